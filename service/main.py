"""The ASGI app that servers import: ``service.main:app``.

Importing it configures logging for the process, as every uvicorn worker must.
"""

from service.app import create_app
from service.log import configure_logging
from service.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
app = create_app(settings)
