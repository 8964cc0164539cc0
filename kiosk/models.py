"""One place that imports every feature's models (for Alembic autogenerate)."""

from kiosk.centres.models import Centre  # noqa: F401
from kiosk.checkin.models import Activity, CheckIn, KioskLock  # noqa: F401
from kiosk.devices.models import KioskDevice  # noqa: F401
from kiosk.home.models import Notice  # noqa: F401
from kiosk.members.models import Member  # noqa: F401
from kiosk.points.models import PointsEntry, Redemption, Reward  # noqa: F401
from kiosk.staff.models import AuditEntry, StaffUser  # noqa: F401
from kiosk.sync.models import OutboxEvent  # noqa: F401
