"""Websocket routes (served by config.asgi through Channels)."""

from django.urls import path

from config import streams
from config.consumers import StreamConsumer

# Each app registers its streams (market.*, trader.*, leaderboard) in <app>/consumers.py.
streams.autodiscover()

websocket_urlpatterns = [
    path("ws/v1/", StreamConsumer.as_asgi()),
]
