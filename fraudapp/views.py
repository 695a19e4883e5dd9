"""HTTP routes of contract §7 on Faust's web server."""

from __future__ import annotations

from faust.web import Request, Response, View

from fraudapp.app import app


@app.page("/health")
class Health(View):
    async def get(self, request: Request) -> Response:
        ready = app.rebalancing is False and bool(app.assignor.assigned_actives())
        return self.json({"status": "ok" if ready else "starting"}, status=200 if ready else 503)
