"""mysite/wsgi.py: gunicorn mysite.wsgi:application"""

import os

from django.core.wsgi import get_wsgi_application

from health_middleware.django import wsgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = wsgi(get_wsgi_application())
