"""Constants and pure functions of the Daraja M-Pesa Express protocol (see DARAJA.md).

Both the gateway's Daraja client and the simulator import from here, so the two sides of the
wire cannot drift apart.
"""

import base64
from datetime import datetime
from enum import StrEnum

OAUTH_PATH = "/oauth/v1/generate"
STK_PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
STK_QUERY_PATH = "/mpesa/stkpushquery/v1/query"
# Pull Transactions: M-Pesa's statement of a shortcode (Safaricom enables it per shortcode).
PULL_REGISTER_PATH = "/pulltransactions/v1/register"
PULL_QUERY_PATH = "/pulltransactions/v1/query"
PULL_SUCCESS_CODE = "1000"
PULL_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # StartDate / EndDate, Nairobi time

TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
# The public Daraja sandbox passkey of shortcode 174379 (published by Safaricom).
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
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
