"""The one TorchServe client: key file, bearer auth, key rejection and renewal, describe, scale.

Depends on requests and the standard library only, so the web UI imports it without torch.

    keys = KeyStore(work_dir / KEY_FILE_NAME)
    with TorchServeClient("http://127.0.0.1:8080", "http://127.0.0.1:8081", keys) as client:
        client.predict("mnist_cnn", png_bytes)
        ready_workers(client.describe("mnist_cnn"))
"""
