"""Sync API v1 on the hub (docs/openapi-sync.yaml). JSON in and out; errors are
{"error": code, "message": text} with the status of the refusal."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from kiosk.extensions import csrf, db
from kiosk.hub import rollup, services
from kiosk.hub.services import HubError
from kiosk.i18n import _l
from kiosk.sync import protocol

bp = Blueprint("sync_api", __name__, url_prefix=protocol.API_PREFIX)
csrf.exempt(bp)
log = logging.getLogger("kiosk.hub")


def _hub() -> services.HubSecrets:
    secrets = current_app.extensions.get("kiosk.hub.secrets")
    if secrets is None:
        secrets = current_app.extensions["kiosk.hub.secrets"] = services.secrets_from_config(current_app.config)
    return secrets


@bp.errorhandler(HubError)
def _refused(error: HubError):
    db.session.rollback()
    log.info("sync refused: %s (%s %s)", error.code, request.method, request.path)
    return jsonify(error=error.code, message=str(error.message)), error.status


def _path() -> str:
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


def _signed() -> services.SignedRequest:
    return services.SignedRequest(request.method, _path(), request.headers, request.get_data(cache=True))


@bp.get("/hub-key")
def hub_key():
    """The hub's public key (for sealing phones); public, unsigned."""
    return jsonify(hub_public_key=_hub().public_key, protocol=protocol.PROTOCOL_VERSION)


@bp.post("/enrol")
def enrol():
    data = request.get_json(silent=True)
    code = data.get("code", "") if isinstance(data, dict) else ""  # a JSON array here was a 500
    issued = services.enrol_unit(db.session, str(code), request.headers, _hub())
    log.info("centre %s enrolled (key %s)", issued.centre_code, issued.key_id)
    return jsonify(centre=issued.centre_code, key_id=issued.key_id, secret=issued.secret, hub_public_key=_hub().public_key), 201


@bp.post("/hello")
def hello():
    return jsonify(services.hello_unit(db.session, _signed(), _hub()))


@bp.post("/keys/roll")
def roll():
    issued = services.roll_key_unit(db.session, _signed(), _hub())
    return jsonify(centre=issued.centre_code, key_id=issued.key_id, secret=issued.secret), 201


@bp.post("/events")
def push():
    if request.content_length is not None and request.content_length > protocol.MAX_BATCH_BYTES:
        return jsonify(error="batch_too_large", message=str(_l("A batch may be at most %(n)d bytes.", n=protocol.MAX_BATCH_BYTES))), 413
    result = services.push_unit(db.session, _signed(), _hub())
    if result.inserted:  # committed: this worker's roller applies the batch to the roll-ups soon
        rollup.wake(current_app)
    # 409 says "stored, acknowledged, but some event_ids came with a different payload": they
    # are set aside on the hub for district staff, and the acknowledged sequence moved on.
    status = 409 if result.conflicts else 200
    return jsonify(acked_seq=result.acked_seq, inserted=result.inserted, duplicates=result.duplicates, conflicts=result.conflicts), status


@bp.get("/pull")
def pull():
    cursor = services.small_number(request.args.get("cursor", "0")) or 0
    return jsonify(services.pull_unit(db.session, _signed(), _hub(), cursor))
