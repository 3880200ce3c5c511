"""mysite/urls.py: the project's own pages (the health paths need none)."""

from django.http import HttpResponse
from django.urls import path


def home(request):
    return HttpResponse("Hello\n")


urlpatterns = [path("", home)]
