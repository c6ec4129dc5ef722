"""One module per resource; `api.main` mounts their routers."""
