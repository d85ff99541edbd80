"""Plain helpers shared by the tests and the bench: no pytest import, standard library plus what
the project already depends on (``make bench`` runs without the test fixtures).

* ``compose``: what ``docker compose config`` would print (interpolation, override merge, profiles).
* ``dockerfile`` / ``dockerignore``: the Dockerfile's stages and the build context's filter.
* ``procfile``: the Procfile as honcho (``make run``) reads it.
* ``net``: ``free_port``, ``port_open``, ``http_get``.
* ``waiting``: ``wait_until`` (poll instead of sleeping).
* ``children``: the environment a service runs with as a child process (inherited settings dropped).
* ``streams``: a camera's Redis Stream entries, typed.

The percentile definition lives in ``shared/percentiles.py``: the viewer's /api/stats uses it too.

Each module has its own small tests beside it (``tests/support/test_*.py``).
"""
