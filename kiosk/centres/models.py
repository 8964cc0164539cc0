from __future__ import annotations

import enum

from sqlalchemy import Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kiosk.db import Base


class CentreLevel(enum.StrEnum):
    DISTRICT = "district"
    SUBDISTRICT = "subdistrict"
    COMMUNITY = "community"
    VILLAGE = "village"
    BUSINESS = "business"
    INDUSTRY = "industry"


class Centre(Base):
    """A 党群服务中心 in the district's matrix. A kiosk knows its own by CENTRE_CODE."""

    __tablename__ = "centre"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[CentreLevel] = mapped_column(Enum(CentreLevel, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("centre.id"))

    parent: Mapped[Centre | None] = relationship(remote_side=[id])
