"""The one launcher of the stack: TorchServe and the gunicorn web UI, alone or together.

    python -m stack                  # what `make run` does: both, in the foreground

`stack.torchserve.TorchServe` (one server, its own work dir, ports and TMPDIR),
`stack.gunicorn.Gunicorn` (the web UI) and `stack.launcher.Launcher` (both, as a context
manager) are what the CLIs, the Docker command, the test fixtures and the benchmarks start.
"""
