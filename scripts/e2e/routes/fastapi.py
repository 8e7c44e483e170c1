# ruff: noqa: F821  (a snippet: app, request and Request are the example module's names)
# make e2e (scripts/e2e/scratch_copy.py puts this before the __main__ block of a scratch copy):
# what the app sees as the identity headers only the server may set (the header-forge cases).
@app.get("/e2e/headers")
async def e2e_headers(request: Request) -> dict[str, str]:
    return {
        "user_id": request.headers.get("Mattermost-User-Id", ""),
        "plugin_id": request.headers.get("Mattermost-Plugin-Id", ""),
    }
