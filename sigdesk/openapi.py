"""Declared inputs: every JSON call is declared once with pydantic v2 models, checked on the way in,
and documented from the same models, so a document cannot drift from what the code accepts.

Two sets of declarations share one mechanism: `operation()` declares the public REST API (the
/api/v1/openapi.json document), `ui_call()` the JSON calls and fragments of SigDesk's own pages,
which are not part of that promise and are kept out of it (their own document is `ui.document()`).

Why spectree: it decorates the existing Flask views where they are, on plain blueprints, and leaves
the app factory alone, so `requires()` (the access hook reads `view.permission`), the CSRF hook and
bearer-token sign-in work as before. flask-openapi3 and APIFlask each want their own app and
blueprint classes (APIFlask also its marshmallow schemas and its own auth and error answers).

Two things spectree leaves to us: path parameters (it only reads the URL converters' types, and
Werkzeug's int converter takes "١٢" and ids past 2**63), and its error shape. Path parameters are
routed as text, validated here against a model and documented from it; every validation error
becomes a UserError, answered by the app's one handler as {"error", "status", "field"}.
"""

from __future__ import annotations

import logging

import copy
from collections.abc import Callable, Mapping, Sequence
from functools import wraps
from typing import Any

from flask import request
from pydantic import BaseModel, ValidationError
from spectree import Response, SecurityScheme, SecuritySchemeData, SpecTree

from sigdesk import __version__
from sigdesk.errors import UserError

PREFIX = "/api/v1"
JSON_TYPES = frozenset({"application/json"})
FORM_TYPES = frozenset({"multipart/form-data"})
PAGE_FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
ERROR_TEXT = {
    400: "The input is not what this operation takes; `field` names the part at fault",
    401: "Missing or invalid token",
    403: "Your role does not allow this, or your address is not on the allow-list",
    404: "Not found (or assigned to someone else)",
    409: "In conflict with what is there: WhatsApp is not connected, or the record exists (the message says)",
    413: "The request body is too large",
    422: "Well-formed but against a rule (WhatsApp's or the business's); the message says which",
    429: "Too many requests",
    502: "Meta refused the request",
    503: "SigDesk is busy or not set up yet; try again",
}
COMMON_ERRORS = (400, 401, 403, 413, 429, 503)


log = logging.getLogger(__name__)


class Error(BaseModel):
    """Every refusal: what to tell the user, the HTTP status, and the input at fault if one is."""

    error: str
    status: int
    field: str | None = None


def _refuse_invalid(_request: Any, _response: Any, error: Exception | None, _instance: Any, _adapter: Any) -> None:
    if isinstance(error, ValidationError):
        raise invalid(error)


def _answer_mismatch(_request: Any, _response: Any, error: Exception | None, _instance: Any, _adapter: Any) -> None:
    """An answer that breaks its own declaration is a bug (spectree answers 500); logged by field and kind
    only: spectree's own handler would log the values, which may be message text or names."""
    if isinstance(error, ValidationError):
        where = sorted(
            {(".".join(str(part) for part in item["loc"]), item["type"]) for item in error.errors(include_url=False)}
        )
        log.error("an answer does not match its declaration: %s", where)


def invalid(error: ValidationError) -> UserError:
    """pydantic's first complaint as one sentence that names the field ("limit: ...")."""
    first = error.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    if len(loc) > 1 and loc[0] in TAGS:
        loc = loc[1:]
    field = loc[0] if loc else ("type" if first["type"].startswith("union_tag") else "body")
    where = ".".join(loc) or field
    # a validator's own sentence comes as "Value error, <sentence>": the sentence is what people read
    message = str(first["msg"]).removeprefix("Value error, ")
    return UserError(f"'{where}': {message}", 400, field)


TAGS: set[str] = set()  # union tags that pydantic puts at the start of an error's location


def _name(model: Any) -> str:
    return model.__name__.removesuffix("Data")


def _spectree(title: str, **options: Any) -> SpecTree:
    return SpecTree(
        "flask",
        mode="strict",
        title=title,
        version=__version__,
        before=_refuse_invalid,
        after=_answer_mismatch,
        validation_error_status=400,
        validation_error_model=Error,
        naming_strategy=_name,
        nested_naming_strategy=lambda _parent, child: child.removesuffix("Data"),
        annotations=False,
        **options,
    )


class Declarations:
    """One document's operations: a spectree instance (strict: it documents only what it decorated),
    the path models spectree cannot read, and the URL prefix its paths are written relative to."""

    def __init__(self, spec: SpecTree, prefix: str = "", common_errors: Sequence[int] = ()) -> None:
        self.spec = spec
        self.prefix = prefix
        self.common_errors = tuple(common_errors)
        self.path_models: dict[str, type[BaseModel]] = {}

    def operation(
        self,
        operation_id: str,
        ok: tuple[int, type[BaseModel] | None] | None = None,
        *,
        path: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        json: type[BaseModel] | None = None,
        form: type[BaseModel] | None = None,
        errors: Sequence[int] = (),
        also: Mapping[int, str] | None = None,
    ) -> Callable[[Callable], Callable]:
        """Declare an operation: its inputs, its answer and the refusals it may give.

        The view gets the validated path parameters as keyword arguments and finds the query and body
        models on `request.context`. With both `json` and `form`, a JSON object or a page's form post
        is taken (the same model checks either). Without `ok`, the answer is not checked (pages,
        fragments and redirects). `also` documents other answers without a body, by status and what
        they mean (a page's form post redirects back to the page); they are passed through unchecked.
        """
        codes = sorted(set(errors) | set(self.common_errors))
        responses: dict[str, Any] = {f"HTTP_{ok[0]}": ok[1]} if ok is not None else {}
        responses.update({f"HTTP_{code}": (Error, ERROR_TEXT[code]) for code in codes})
        responses.update({f"HTTP_{code}": (None, text) for code, text in (also or {}).items()})

        def decorate(view: Callable) -> Callable:
            validated = self.spec.validate(
                query=query,
                json=json,
                form=form,
                resp=Response(**responses) if ok is not None else None,
                operation_id=operation_id,
            )(view)
            if path is not None:
                self.path_models[operation_id] = path

            @wraps(validated)
            def checked(**view_args: Any):
                _check_content_type(json, form)
                if path is not None:
                    try:
                        view_args = path.model_validate(view_args).model_dump()
                    except ValidationError as exc:
                        raise invalid(exc) from exc
                return validated(**view_args)

            return checked

        return decorate

    def document(self) -> dict[str, Any]:
        """The document as served: paths relative to the prefix, path parameters from their models."""
        generated = copy.deepcopy(self.spec.spec)
        paths = {}
        for path, operations in generated["paths"].items():
            for item in operations.values():
                self._describe_path_parameters(item)
                if not item.get("tags"):
                    item.pop("tags", None)
            paths[path.removeprefix(self.prefix) if self.prefix else path] = operations
        generated["paths"] = dict(sorted(paths.items()))
        if not generated.get("tags"):
            generated.pop("tags", None)
        return generated

    def _describe_path_parameters(self, item: dict[str, Any]) -> None:
        model = self.path_models.get(item["operationId"])
        if model is None:
            return
        schema = model.model_json_schema()["properties"]
        for parameter in item["parameters"]:
            if parameter["in"] == "path":
                declared = dict(schema[parameter["name"]])
                parameter["description"] = declared.pop("description", "")
                declared.pop("title", None)
                parameter["schema"] = declared


def _check_content_type(json: type[BaseModel] | None, form: type[BaseModel] | None) -> None:
    """spectree skips a body sent as another media type; here that is a refusal instead."""
    if json is not None and form is not None:  # a page's call: a JSON object, or the page's form post
        if request.mimetype in PAGE_FORM_TYPES:
            _check_form(form)
        elif not isinstance(request.get_json(silent=True), dict):
            raise UserError("Send a JSON object with Content-Type: application/json", 400, "body")
        return
    if json is not None and not isinstance(request.get_json(silent=True), dict):
        raise UserError("Send a JSON object with Content-Type: application/json", 400, "body")
    if form is not None and request.mimetype not in FORM_TYPES:
        raise UserError("Send multipart/form-data", 400, "body")
    if form is not None:
        _check_form(form)


def _check_form(form: type[BaseModel]) -> None:
    """spectree's own answer to a bad form fails to serialize an uploaded file, so forms are checked first."""
    try:
        form.model_validate({**request.form.to_dict(), **request.files.to_dict()})
    except ValidationError as exc:
        raise invalid(exc) from exc


api = Declarations(
    _spectree(
        "SigDesk API",
        servers=[{"url": PREFIX}],
        security_schemes=[
            SecurityScheme(
                name="bearerAuth",
                data=SecuritySchemeData(
                    type="http", scheme="bearer", description="Personal API token (sigdesk token create)"
                ),
            )
        ],
        security={"bearerAuth": []},
    ),
    PREFIX,
    COMMON_ERRORS,
)
spec = api.spec
operation = api.operation
document = api.document

# SigDesk's own pages' calls (session cookie and CSRF header): checked the same way, never in the API's document.
ui = Declarations(_spectree("SigDesk page calls (internal, may change without notice)"))
ui_call = ui.operation
