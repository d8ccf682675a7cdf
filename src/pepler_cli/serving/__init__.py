"""``pepler serve``: explanations over HTTP (FastAPI on uvicorn, the optional extra ``pepler-cli[serve]``).

- ``batcher.py``: concurrent requests gathered into one decoding call (dynamic batching), a bounded queue;
- ``app.py``: the routes (``POST /explain``, ``GET /healthz``, ``/readyz``, ``/info``), request limits, the API
  token;
- ``server.py``: loading the run, binding, and stopping on SIGTERM after the requests in flight.
"""
