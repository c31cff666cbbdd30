"""An iterator that keeps its place across passes, at a generator's speed per item.

Example:
    >>> class Numbers(Resumable):
    ...     __slots__ = ("upto",)
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.upto = 0
    ...     def _pass(self, ended):
    ...         def numbers():
    ...             try:
    ...                 while self.upto < limit[0]:
    ...                     self.upto += 1
    ...                     yield self.upto
    ...             finally:
    ...                 ended()
    ...         return numbers()
    >>> limit = [2]
    >>> numbers = Numbers()
    >>> list(numbers)
    [1, 2]
    >>> limit[0] = 3  # more arrived: the same iterator goes on
    >>> list(numbers)
    [3]
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator

__all__ = ["Resumable"]


class Resumable:
    """An iterator that keeps its place: ``next()`` after ``StopIteration`` (the file
    grew) or after a :class:`RecordError` (retried) starts a new pass where the last
    one stopped. The base of the iterators of :meth:`~hublayer.records.Reader.__iter__`
    and :func:`~hublayer.records.read_records`; a subclass makes each pass in
    :meth:`_pass`.

    ``__next__`` is an instance slot holding the running pass's generator's
    ``__next__``: Python calls it from C, with no Python frame between a ``for`` loop
    and the generator (a ``__next__`` method adds one frame to every record's path).
    The pass calls back as it ends (through a weak reference, so a loop left
    early frees the generator and its file at once); ``__next__`` then becomes
    :meth:`_resume`, which starts the next pass.
    """

    __slots__ = ("__next__", "__weakref__")

    def __init__(self) -> None:
        self.__next__: Callable[[], bytes] = self._resume

    def __iter__(self) -> Resumable:
        return self

    def _pass(self, ended: Callable[[], None]) -> Iterator[bytes]:
        """A generator of the records from where the last pass stopped; it calls
        ``ended`` as it ends (returned or raised)."""
        raise NotImplementedError

    def _resume(self) -> bytes:
        records = self._pass(functools.partial(_pass_ended, weakref.ref(self)))
        self.__next__ = records.__next__
        return self.__next__()


def _pass_ended(ref: weakref.ref[Resumable]) -> None:
    iterator = ref()
    if iterator is not None:
        iterator.__next__ = iterator._resume
