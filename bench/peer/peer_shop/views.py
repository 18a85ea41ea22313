"""The shop's two API views, written the way django_mpesa's README shows: a DRF view that
validates and calls STKPushService, and one that reads the stored transaction."""

from django_mpesa.exceptions import DarajaAPIError, DarajaValidationError
from django_mpesa.services.stk_push import STKPushService
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from peer_shop.models import MpesaTransaction


class PaySerializer(serializers.Serializer):
    phone_number = serializers.CharField(max_length=20)
    amount = serializers.IntegerField(min_value=1, max_value=250_000)
    reference = serializers.CharField(max_length=12, default="bench")


@api_view(["POST"])
def pay(request: Request) -> Response:
    serializer = PaySerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    try:
        txn = STKPushService().initiate(
            phone_number=data["phone_number"],
            amount=data["amount"],
            account_reference=data["reference"],
            transaction_desc="Payment",
        )
    except DarajaValidationError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    except DarajaAPIError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_502_BAD_GATEWAY)
    return Response(_json(txn), status=status.HTTP_201_CREATED)


@api_view(["GET"])
def payment(request: Request, checkout_request_id: str) -> Response:
    try:
        txn = MpesaTransaction.objects.get(checkout_request_id=checkout_request_id)
    except MpesaTransaction.DoesNotExist:
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return Response(_json(txn))


def _json(txn: MpesaTransaction) -> dict[str, object]:
    return {
        "id": str(txn.id),
        "checkout_request_id": txn.checkout_request_id,
        "status": txn.status,
        "amount": str(txn.amount),
        "phone_number": txn.phone_number,
        "mpesa_receipt_number": txn.mpesa_receipt_number,
        "initiated_at": txn.initiated_at.isoformat(),
    }
