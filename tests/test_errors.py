"""errors.py: every error is a HublayerError and the builtin it refines, and carries its fields."""

from __future__ import annotations

import inspect
import pickle

import pytest

from hublayer import errors

BUILTIN_OF = {
    "HandleError": ValueError,
    "NotCachedError": FileNotFoundError,
    "ModelNotFoundError": FileNotFoundError,
    "DownloadError": ConnectionError,
    "CorruptEntryError": OSError,
    "UnsafeArchiveError": ValueError,
    "CacheLockError": TimeoutError,
    "InsufficientSpaceError": OSError,
    "SignatureError": ValueError,
    "NotTrainableError": ValueError,
    "BackendError": NotImplementedError,
    "RecordError": ValueError,
    "SchemaError": ValueError,
    "SpecMismatchError": ValueError,
    "TrainingError": RuntimeError,
    "UnsupportedVersionError": RuntimeError,
    "ImageDecodeError": ValueError,
    "OutputExistsError": FileExistsError,
    "OutputNotWritableError": PermissionError,
    "MissingExtraError": ImportError,
    "InvalidModelError": ValueError,
    "UnsafeModelError": PermissionError,
    "IntegrityError": ValueError,
    "LockFileError": ValueError,
}


def _error_classes() -> list[type[errors.HublayerError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.HublayerError) and cls is not errors.HublayerError
    ]


def test_every_error_is_listed_and_exported() -> None:
    names = {cls.__name__ for cls in _error_classes()}
    assert names == set(BUILTIN_OF)
    assert sorted(errors.__all__) == sorted(names | {"HublayerError", "Fix"})


@pytest.mark.parametrize("name", sorted(BUILTIN_OF))
def test_error_derives_from_its_builtin_and_keeps_fields(name: str) -> None:
    cls = getattr(errors, name)
    err = cls("what to do", **{field: f"v-{field}" for field in cls.fields})
    assert isinstance(err, errors.HublayerError)
    assert isinstance(err, BUILTIN_OF[name])
    assert str(err) == "what to do"
    for field in cls.fields:
        assert getattr(err, field) == f"v-{field}"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls
    assert str(again) == "what to do"
    assert all(getattr(again, f) == f"v-{f}" for f in cls.fields)


def test_missing_fields_are_none() -> None:
    err = errors.DownloadError("failed", url="http://127.0.0.1/x")
    assert err.url == "http://127.0.0.1/x"
    assert err.status is None


def test_a_fix_is_worded_for_python_and_for_the_cli_and_survives_pickling() -> None:
    fix = errors.Fix('Pass delimiter=";".', 'Pass --delimiter ";".')
    err = errors.SchemaError("Expected 3 cells per row. Received: 1.", fix=fix, feature="x")
    assert str(err) == 'Expected 3 cells per row. Received: 1. Pass delimiter=";".'
    assert err.cli_message() == 'Expected 3 cells per row. Received: 1. Pass --delimiter ";".'
    again = pickle.loads(pickle.dumps(err))
    assert again.fix == fix
    assert again.feature == "x"
    assert str(again) == str(err)
