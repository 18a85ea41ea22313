"""Constants and pure functions of the Daraja M-Pesa Express protocol (see DARAJA.md).

Both the gateway's Daraja client and the simulator import from here, so the two sides of the
wire cannot drift apart.
"""

import base64
from datetime import datetime
from enum import StrEnum

from pesagate.kit.sandbox import SANDBOX_PASSKEY as SANDBOX_PASSKEY

OAUTH_PATH = "/oauth/v1/generate"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
# Pull Transactions: M-Pesa's statement of a shortcode (Safaricom enables it per shortcode).
PULL_REGISTER_PATH = "/pulltransactions/v1/register"
PULL_QUERY_PATH = "/pulltransactions/v1/query"
PULL_SUCCESS_CODE = "1000"
PULL_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # StartDate / EndDate, Nairobi time

TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
AMOUNT_MAX_KES = 250_000


class TransactionType(StrEnum):
    PAYBILL = "CustomerPayBillOnline"
    BUY_GOODS = "CustomerBuyGoodsOnline"


class ErrorCode(StrEnum):
    """`errorCode` values of the Daraja error envelope."""

    INVALID_FIELD = "400.002.02"
    INVALID_PAYLOAD = "400.002.05"
    INVALID_AUTH_TYPE = "400.008.01"
    INVALID_GRANT_TYPE = "400.008.02"
    INVALID_TOKEN = "404.001.03"
    MERCHANT_OR_SUBSCRIBER = "500.001.1001"
    SPIKE_ARREST = "500.003.02"
    QUOTA = "500.003.03"
    INTERNAL = "500.003.1001"


class ResultCode:
    """Result codes of callbacks and queries (ints; a few arrive as strings on the wire)."""

    SUCCESS = 0
    INSUFFICIENT_BALANCE = 1
    RULE_LIMITED = 17
    SUBSCRIBER_LOCKED = 1001
    TRANSACTION_EXPIRED = 1019
    PUSH_ERROR = 1025
    CANCELLED_ALT = 1031
    CANCELLED = 1032
    SMSC_TIMEOUT = 1036
    NO_RESPONSE = 1037
    WRONG_PIN = 2001
    NOT_PERMITTED = 2028
    STILL_PROCESSING = 4999
    SYSTEM_ERROR = 9999


RESULT_DESCRIPTIONS: dict[int, str] = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    2: "Declined due to limit rule: less than the minimum transaction amount.",
    3: "Declined due to limit rule: greater than the maximum transaction amount.",
    4: "Declined due to limit rule: would exceed daily transfer limit.",
    8: "Declined due to limit rule: would exceed the maximum balance.",
    17: "Rule limited.",
    1001: "Unable to lock subscriber, a transaction is already in process for the current "
    "subscriber",
    1019: "Transaction has expired",
    1025: "An error occurred while sending a push request",
    1031: "Request cancelled by user",
    1032: "Request cancelled by user",
    1036: "SMSC ACK timeout",
    1037: "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
    2028: "The request is not permitted according to product assignment",
    8006: "The security credential is locked",
    9999: "An error occurred while sending a push request.",
}

PUSH_ACCEPTED_DESCRIPTION = "Success. Request accepted for processing"
QUERY_ACCEPTED_DESCRIPTION = "The service request has been accepted successsfully"
QUERY_PROCESSING_MESSAGE = "The transaction is being processed"
QUERY_STILL_PROCESSING_DESC = "The transaction is still under processing"
QUERY_UNKNOWN_MESSAGE = "The transaction does not Exist"
SUBSCRIBER_LOCKED_MESSAGE = (
    "Unable to lock subscriber, a transaction is already in process for the current subscriber"
)
SPIKE_ARREST_MESSAGE = "Error Occurred: Spike Arrest Violation"
MERCHANT_UNKNOWN_MESSAGE = "Merchant does not exist"
WRONG_CREDENTIALS_MESSAGE = "[MerchantValidate] - Wrong credentials"
INVALID_TOKEN_MESSAGE = "Invalid Access Token"


def result_description(code: int) -> str:
    return RESULT_DESCRIPTIONS.get(code, "The transaction failed.")


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """Password = base64(ShortCode + Passkey + Timestamp), plain string concatenation."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def format_timestamp(moment: datetime) -> str:
    return moment.strftime(TIMESTAMP_FORMAT)


# --- Reversal and Transaction Status (next-capabilities.md sections 2 and 3) -----------------

REVERSAL_PATH = "/mpesa/reversal/v1/request"
TRANSACTION_STATUS_PATH = "/mpesa/transactionstatus/v1/query"
# Where Safaricom publishes the certificate that encrypts SecurityCredentials; the simulator
# serves its own at the same path.
SANDBOX_CERTIFICATE_PATH = "/api/v1/GenerateSecurityCredential/SandboxCertificate.cer"
REVERSAL_COMMAND = "TransactionReversal"
STATUS_COMMAND = "TransactionStatusQuery"
# "RecieverIdentifierType" (sic, the wire's spelling): 11 = an organisation (the shortcode).
RECEIVER_IDENTIFIER_FIELD = "RecieverIdentifierType"
RECEIVER_IDENTIFIER_ORGANISATION = "11"
STATUS_IDENTIFIER_SHORTCODE = "4"  # Transaction Status IdentifierType for a shortcode
REMARKS_MIN, REMARKS_MAX = 2, 100
ACCEPTED_REQUEST_DESCRIPTION = "Accept the service request successfully."
QUEUE_TIMEOUT_DESCRIPTION = "The service request timed out."
# Transaction Status: the `TransactionStatus` parameter of a payment that was reversed
# (uncertain: Safaricom documents only "Completed"; see docs/SIMULATOR.md).
STATUS_COMPLETED = "Completed"
STATUS_REVERSED = "Reversed"


class ReversalCode:
    """Result codes of Reversal (and Transaction Status) results, as text: some are numbers on
    the wire (0, 2001), some strings ("R000001")."""

    SUCCESS = "0"
    INSUFFICIENT_BALANCE = "1"
    DEBIT_PARTY_INVALID = "11"
    INITIATOR_NOT_ALLOWED = "21"
    INITIATOR_INVALID = "2001"
    ACCOUNT_RULE = "2006"
    NOT_PERMITTED = "2028"
    CREDENTIAL_LOCKED = "8006"
    ALREADY_REVERSED = "R000001"
    INVALID_ORIGINAL = "R000002"
    OPERATOR_UNKNOWN = "SFC_IC0003"


REVERSAL_DESCRIPTIONS: dict[str, str] = {
    "0": "The service request is processed successfully.",
    "1": "The balance is insufficient for the transaction.",
    "11": "The DebitParty is in an invalid state.",
    "21": "The initiator is not allowed to initiate this request.",
    "2001": "The initiator information is invalid.",
    "2006": "Declined due to account rule.",
    "2028": "The request is not permitted according to product assignment.",
    "8006": "The security credential is locked.",
    "R000001": "The transaction has already been reversed.",
    "R000002": "The OriginalTransactionID is invalid.",
    "SFC_IC0003": "The operator does not exist.",
}


def reversal_description(code: str) -> str:
    return REVERSAL_DESCRIPTIONS.get(code, "The transaction failed.")
