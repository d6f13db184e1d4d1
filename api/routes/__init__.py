"""The `/api/v1` routers: each module builds one from the `ApiContext`."""
