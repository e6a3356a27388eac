"""The link recommendation service: one HTTP API (SPEC §7) for every configured wiki.

``service.app:create_app()`` is the WSGI application (gunicorn in production, config path in
``ADDLINK_CONFIG``); ``python -m service serve|check`` are the local entry points. It uses
``model/`` only through its public entry points and shares the wiki list with the runner
through ``model/wikis.py``.
"""
