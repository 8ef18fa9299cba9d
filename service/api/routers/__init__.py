"""One router per resource: functions, losses, info, health."""

from service.api.routers import functions, health, info, losses

ROUTERS = (functions.router, losses.router, info.router, health.router)

__all__ = ["ROUTERS"]
