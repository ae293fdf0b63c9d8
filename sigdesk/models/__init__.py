"""All tables, imported here so Alembic and the app see one complete metadata."""

from sigdesk.models.analytics import AnalyticsDaily, AnalyticsEpisode, AnalyticsState
from sigdesk.models.audit import AuditEvent, LoginEvent
from sigdesk.models.broadcast import Broadcast, BroadcastRecipient
from sigdesk.models.contact import Contact
from sigdesk.models.contact_import import ImportChange, ImportJob, ImportRecord, ImportRejection
from sigdesk.models.consent import ConsentEvent
from sigdesk.models.custom_field import ContactField, ContactFieldValue
from sigdesk.models.merge import ContactMerge, DuplicateDismissal
from sigdesk.models.conversation import Conversation, ConversationStatus
from sigdesk.models.inbox import CannedResponse, ConversationLabel, Label, Note
from sigdesk.models.lead_score import LeadScoreRule
from sigdesk.models.lifecycle import ContactStage, ContactTag, Stage, StageChange, Tag
from sigdesk.models.outbox import OutboxCursor, OutboxEvent
from sigdesk.models.predictions import PredictionRefresh, ReorderChance, ReorderForecast, ReorderProduct
from sigdesk.models.message import Direction, MediaState, Message, MessageStatus, MessageStatusEvent, Reaction
from sigdesk.models.relay import RejectedDelivery, RelayReceipt
from sigdesk.models.sales import Order, OrderLine, OrderStatusChange, Product
from sigdesk.models.segment import Segment
from sigdesk.models.setting import Setting
from sigdesk.models.template import Template
from sigdesk.models.upload import UploadedMedia
from sigdesk.models.user import ApiToken, RecoveryCode, Role, SignInThrottle, User, UserSession
from sigdesk.models.webhook import AccountEvent, DeliverySource, DeliveryState, WebhookCounter, WebhookDelivery

__all__ = [
    "AccountEvent",
    "AnalyticsDaily",
    "AnalyticsEpisode",
    "AnalyticsState",
    "ApiToken",
    "AuditEvent",
    "Broadcast",
    "BroadcastRecipient",
    "CannedResponse",
    "ConsentEvent",
    "Contact",
    "ImportChange",
    "ImportJob",
    "ImportRecord",
    "ImportRejection",
    "ContactField",
    "ContactFieldValue",
    "ContactMerge",
    "DuplicateDismissal",
    "ConversationLabel",
    "Label",
    "LeadScoreRule",
    "ContactStage",
    "ContactTag",
    "Stage",
    "StageChange",
    "Tag",
    "Note",
    "Conversation",
    "ConversationStatus",
    "DeliverySource",
    "DeliveryState",
    "Direction",
    "LoginEvent",
    "MediaState",
    "Message",
    "MessageStatus",
    "MessageStatusEvent",
    "Order",
    "OrderLine",
    "OrderStatusChange",
    "OutboxCursor",
    "OutboxEvent",
    "PredictionRefresh",
    "Reaction",
    "Product",
    "RecoveryCode",
    "RejectedDelivery",
    "RelayReceipt",
    "ReorderChance",
    "ReorderForecast",
    "ReorderProduct",
    "Role",
    "Segment",
    "Setting",
    "SignInThrottle",
    "Template",
    "UploadedMedia",
    "User",
    "UserSession",
    "WebhookCounter",
    "WebhookDelivery",
]
