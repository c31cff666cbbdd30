"""Code that runs only in the peers' own processes.

- ``_legacy.py``: ``tensorflow_hub`` + ``tf_keras``, imported only in a worker started with
  ``TF_USE_LEGACY_KERAS=1`` (it cannot share a process with Keras 3).
- ``_coldstart.py``: ``python -m benchmarks.peers._coldstart WHICH PATH``, one cold load.
- ``_first_call.py``: ``python -m benchmarks.peers._first_call WHICH HANDLE CACHE``, the
  first resolve of a cached handle in a fresh process (hublayer or tensorflow_hub).
- ``_server.py``: :class:`LoopbackServer` runs ``hublayer.testing``'s ``FileServer`` as a
  loopback HTTP server in its own process, so serving bytes does not compete with a
  client for the GIL.
"""
