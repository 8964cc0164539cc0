"""Sync API v1 on the hub (docs/openapi-sync.yaml). JSON in and out; errors are
{"error": code, "message": text} with the status of the refusal."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from kiosk.extensions import csrf, db
from kiosk.hub import services
from kiosk.hub.services import HubError
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


def _authenticated():
    body = request.get_data(cache=True)
    key = services.authenticate(db.session, request.method, _path(), request.headers, body)
    services.check_protocol(request.headers, _hub())  # refusing rolls back the nonce too
    return key, body


@bp.get("/hub-key")
def hub_key():
    """The hub's public key (for sealing phones); public, unsigned."""
    return jsonify(hub_public_key=_hub().public_key, protocol=protocol.PROTOCOL_VERSION)


@bp.post("/enrol")
def enrol():
    services.check_protocol(request.headers, _hub())
    data = request.get_json(silent=True)
    code = data.get("code", "") if isinstance(data, dict) else ""  # a JSON array here was a 500
    issued = services.enrol(db.session, str(code))
    db.session.commit()
    log.info("centre %s enrolled (key %s)", issued.centre_code, issued.key_id)
    return jsonify(centre=issued.centre_code, key_id=issued.key_id, secret=issued.secret, hub_public_key=_hub().public_key), 201


@bp.post("/hello")
def hello():
    key, _body = _authenticated()
    answer = services.hello(db.session, key, _hub())
    db.session.commit()
    return jsonify(answer)


@bp.post("/keys/roll")
def roll():
    key, _body = _authenticated()
    issued = services.roll_key(db.session, key)
    db.session.commit()
    return jsonify(centre=issued.centre_code, key_id=issued.key_id, secret=issued.secret), 201


@bp.post("/events")
def push():
    if request.content_length is not None and request.content_length > protocol.MAX_BATCH_BYTES:
        return jsonify(error="batch_too_large", message=f"at most {protocol.MAX_BATCH_BYTES} bytes"), 413
    key, body = _authenticated()
    if request.headers.get("Content-Encoding", "") != "gzip":
        raise HubError("gzip_required", "push bodies are gzip JSON")
    try:
        batch = protocol.decode_batch(body)
    except (OSError, EOFError, ValueError):
        raise HubError("bad_batch", "the body is not gzip JSON") from None
    events = batch.get("events") if isinstance(batch, dict) else None
    result = services.ingest(db.session, key, events, _hub(), app_version=request.headers.get(protocol.HEADER_APP_VERSION, ""))
    db.session.commit()
    # 409 says "stored, acknowledged, but some event_ids came with a different payload": they
    # are set aside on the hub for district staff, and the acknowledged sequence moved on.
    status = 409 if result.conflicts else 200
    return jsonify(acked_seq=result.acked_seq, inserted=result.inserted, duplicates=result.duplicates, conflicts=result.conflicts), status


@bp.get("/pull")
def pull():
    key, _body = _authenticated()
    cursor = services.small_number(request.args.get("cursor", "0")) or 0
    answer = services.pull(db.session, key, cursor)
    db.session.commit()
    return jsonify(answer)
