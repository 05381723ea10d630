"""What serving and training share: model definitions, checkpoints, preprocessing, prediction.

`handlers/` (TorchServe) and `training/` import this package; it imports neither. Its leaf
modules `constants`, `limits` and `catalog` need no third-party package, so the web UI and the
scripts may read those facts without loading torch or OpenCV.
"""
