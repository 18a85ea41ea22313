from django.apps import AppConfig
from django.conf import settings


class PeerShopConfig(AppConfig):
    name = "peer_shop"

    def ready(self) -> None:
        # django_mpesa knows only Safaricom's two hosts; the bench's Daraja is the simulator.
        # (Its settings are read when django_mpesa.conf is first imported: after settings.py.)
        from django_mpesa import conf

        conf.BASE_URLS["sandbox"] = settings.DARAJA_URL
