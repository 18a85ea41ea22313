from django.urls import include, path

from peer_shop import views

urlpatterns = [
    path("pay/", views.pay),
    path("payments/<str:checkout_request_id>/", views.payment),
    path("mpesa/", include("django_mpesa.urls")),
]
