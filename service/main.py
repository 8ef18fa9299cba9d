"""The ASGI app that servers import: ``service.main:app``.

Importing it configures the process, as every uvicorn worker must: logging, and
the allocator thresholds of :mod:`service.runtime` unless switched off.
"""

from service.app import create_app
from service.log import configure_logging
from service.runtime import tune_allocator
from service.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
if settings.tune_malloc:
    tune_allocator()
app = create_app(settings)
