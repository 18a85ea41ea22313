"""The shop's concrete M-Pesa tables, as django_mpesa's README asks (its models are abstract)."""

from django_mpesa.models import AbstractMpesaCallbackLog, AbstractMpesaTransaction


class MpesaTransaction(AbstractMpesaTransaction):
    pass


class MpesaCallbackLog(AbstractMpesaCallbackLog):
    pass
