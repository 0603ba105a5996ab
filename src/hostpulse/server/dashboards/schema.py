"""What a board is made of, validated before it is stored: the widgets (type, place on the grid,
metric from the catalog, host or a ``$variable``), the variables and the time range. Bounds are
in ``limits``; every problem is a 422 that names the field."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from hostpulse import catalog
from hostpulse.server.dashboards import limits as lim

WidgetType = Literal["timeseries", "stat", "gauge", "bar", "table", "processes", "alerts", "hosts"]
METRIC_WIDGETS: frozenset[str] = frozenset({"timeseries", "stat", "gauge", "bar", "table"})
"""The widget types that draw one catalog metric (the others need none)."""
Sharing = Literal["private", "view", "edit"]
Agg = Literal["avg", "min", "max", "last"]

_VAR = re.compile(r"[a-z][a-z0-9_]{0,31}")
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=lim.MAX_NAME)]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=lim.MAX_NAME)
]
LabelText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
HostRef = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""A host id, or ``$name`` of one of the board's variables."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Widget(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
    type: WidgetType
    title: Text = ""
    x: int = Field(ge=0, lt=lim.GRID_COLUMNS, description="First column (0-11).")
    y: int = Field(ge=0, le=lim.MAX_ROW, description="First row.")
    w: int = Field(ge=1, le=lim.GRID_COLUMNS, description="Columns spanned.")
    h: int = Field(ge=1, le=lim.MAX_HEIGHT, description="Rows spanned.")
    metric: str | None = Field(
        default=None,
        max_length=200,
        description="A catalog metric key (checked against the catalog when saved).",
    )
    host: HostRef | None = Field(
        default=None, description="A host id or `$variable`; none: every host (hosts, alerts)."
    )
    labels: dict[LabelText, LabelText] = Field(
        default_factory=dict, max_length=lim.MAX_LABEL_FILTERS
    )
    agg: Agg = "avg"
    max: float | None = Field(default=None, description="Gauge/bar full scale (percent: 100).")

    @model_validator(mode="after")
    def _shape(self) -> Widget:
        if self.x + self.w > lim.GRID_COLUMNS:
            raise ValueError(f"x + w is {self.x + self.w}, the grid has {lim.GRID_COLUMNS} columns")
        if self.type in METRIC_WIDGETS and self.metric is None:
            raise ValueError(f"a {self.type} widget needs a metric")
        return self


class Variable(_Strict):
    name: str = Field(description="Used as `$name` in a widget's host.")
    type: Literal["host"] = "host"
    default: HostRef | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _VAR.fullmatch(name):
            raise ValueError("a variable name is a lowercase letter, then up to 31 of a-z 0-9 _")
        return name


class BoardSpec(_Strict):
    """The layout of a board; stored as given (after validation)."""

    range_s: int = Field(
        default=3600, ge=60, le=366 * 86400, description="The time range shown, in seconds."
    )
    variables: list[Variable] = Field(default_factory=list, max_length=lim.MAX_VARIABLES)
    widgets: list[Widget] = Field(default_factory=list, max_length=lim.MAX_WIDGETS)

    @model_validator(mode="after")
    def _references(self) -> BoardSpec:
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise ValueError("two variables have the same name")
        ids = [w.id for w in self.widgets]
        if len(set(ids)) != len(ids):
            raise ValueError("two widgets have the same id")
        for w in self.widgets:
            if w.host is not None and w.host.startswith("$") and w.host[1:] not in names:
                raise ValueError(f"widget {w.id!r} uses {w.host}, which is not a variable")
        size = len(self.compact())
        if size > lim.MAX_SPEC_BYTES:
            raise ValueError(
                f"the board is {size} bytes of JSON, the limit is {lim.MAX_SPEC_BYTES}"
            )
        return self

    def compact(self) -> str:
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"))

    def unknown_metrics(self) -> list[str]:
        """Problems of widgets whose metric this server's catalog does not have. Checked when
        a board is saved, not when it is read: a stored board that names a metric a later
        version dropped still opens (that widget shows no data)."""
        return [
            f"spec.widgets[{i}].metric: unknown metric {w.metric!r} "
            "(GET /api/v1/catalog lists them)"
            for i, w in enumerate(self.widgets)
            if w.metric is not None and w.metric not in catalog.BY_KEY
        ]


class BoardIn(_Strict):
    """A board as created or saved."""

    name: Name
    sharing: Sharing = "private"
    spec: BoardSpec = Field(default_factory=BoardSpec)
    version: int | None = Field(
        default=None,
        description="On save: the version this edit started from; 409 when someone saved since.",
    )


EXPORT_FORMAT: Literal[1] = 1


class BoardExport(_Strict):
    """A board as a file: what export writes and import reads (no owner, id or sharing)."""

    hostpulse_dashboard: Literal[1] = Field(
        default=EXPORT_FORMAT, description="The format version of the file."
    )
    name: Name
    description: Text = ""
    spec: BoardSpec


def spec_of(raw: dict[str, Any]) -> BoardSpec:
    return BoardSpec.model_validate(raw)
