"""The application ``tarifa serve`` runs (granian's ASGI interface): the WSGI application of
``tarifa.wsgi`` behind ``tarifa.front``, which reads request bodies in the event loop with a time
limit and runs the application in the worker's threads."""

from tarifa.front import application_for
from tarifa.wsgi import application as wsgi_application

application = application_for(wsgi_application)
