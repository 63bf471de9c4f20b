"""An in-memory search engine for argilla-server, registered as ``memory`` (test support only).

argilla-server 2.x needs Elasticsearch or OpenSearch for its record search, progress counts and the annotation view
of its UI; neither can be installed on the machines the tests run on. This engine implements argilla-server's
``SearchEngine`` interface over plain dicts: it really indexes records (fields, metadata, suggestions, responses,
status), answers text queries, filters (metadata, suggestions, responses per user, record status, the "pending for
me" filter the UI uses), sorts, paginates, and counts progress, so the server, its UI and the SDK behave as they do
on Elasticsearch for the features curate uses. Vector similarity search is not implemented.

This module runs inside argilla-server's own virtual environment (it imports ``argilla_server``); curate's code
never imports it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any
from uuid import UUID

from argilla_server.enums import MetadataPropertyType, SortOrder
from argilla_server.search_engine.base import (
    AndFilter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)

# The engine is instantiated once per request (SearchEngine.get_by_name), so the index lives at module level:
# {dataset id: {record id: document}}, documents kept in insertion order.
_INDEX: dict[UUID, dict[UUID, dict[str, Any]]] = {}
_WORD = re.compile(r"\w+")


def _value(enum_or_value: Any) -> Any:
    return getattr(enum_or_value, "value", enum_or_value)


def _response_doc(response: Any) -> dict[str, Any]:
    return {
        "id": str(response.id),
        "status": _value(response.status),
        "user_id": str(response.user_id),
        "values": {name: (value or {}).get("value") for name, value in (response.values or {}).items()},
    }


def _suggestion_doc(suggestion: Any) -> dict[str, Any]:
    return {
        "type": _value(suggestion.type),
        "agent": suggestion.agent,
        "score": suggestion.score,
        "value": suggestion.value,
    }


def _record_doc(record: Any) -> dict[str, Any]:
    # Same attributes the Elasticsearch engine reads: the callers have loaded exactly these relationships.
    document: dict[str, Any] = {
        "id": str(record.id),
        "external_id": record.external_id,
        "fields": dict(record.fields or {}),
        "status": _value(record.status),
        "inserted_at": record.inserted_at,
        "updated_at": record.updated_at,
        "metadata": dict(record.metadata_ or {}),
        "responses": [],
        "suggestions": {},
    }
    if record.responses:
        document["responses"] = [_response_doc(r) for r in record.responses]
    if record.suggestions:
        document["suggestions"] = {s.question.name: _suggestion_doc(s) for s in record.suggestions}
    return document


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _terms_match(value: Any, values: list[str]) -> bool:
    wanted = {str(v) for v in values}
    return any(str(v) in wanted for v in _as_list(value))


def _range_match(value: Any, ge: float | None, le: float | None) -> bool:
    for v in _as_list(value):
        try:
            number = float(v)
        except (TypeError, ValueError):
            continue
        if (ge is None or number >= ge) and (le is None or number <= le):
            return True
    return False


def _user_responses(document: dict[str, Any], user: Any) -> list[dict[str, Any]]:
    responses = document["responses"]
    return responses if user is None else [r for r in responses if r["user_id"] == str(user.id)]


def _match_value(filter: Any, value: Any) -> bool:
    if isinstance(filter, TermsFilter):
        return _terms_match(value, filter.values)
    if isinstance(filter, RangeFilter):
        return _range_match(value, filter.ge, filter.le)
    raise ValueError(f"cannot process filter {filter}")


def _matches(document: dict[str, Any], filter: Any) -> bool:
    if isinstance(filter, AndFilter):
        return all(_matches(document, f) for f in filter.filters)
    scope = filter.scope
    if isinstance(scope, MetadataFilterScope):
        return _match_value(filter, document["metadata"].get(scope.metadata_property))
    if isinstance(scope, SuggestionFilterScope):
        return _match_value(filter, document["suggestions"].get(scope.question, {}).get(scope.property))
    if isinstance(scope, RecordFilterScope):
        return _match_value(filter, document.get(scope.property))
    if isinstance(scope, ResponseFilterScope):
        responses = _user_responses(document, scope.user)
        if scope.question:
            return any(_match_value(filter, r["values"].get(scope.question)) for r in responses)
        if scope.property == "status" and isinstance(filter, TermsFilter):
            statuses = {str(_value(v)) for v in filter.values}
            # "pending" means: no response yet (from this user, when the filter is scoped to one).
            if "pending" in statuses and not responses:
                return True
            return any(r["status"] in statuses for r in responses)
    raise ValueError(f"cannot process filter scope {scope}")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # chat fields: [{role, content}]
        return " ".join(_text(m.get("content") if isinstance(m, dict) else m) for m in value)
    return "" if value is None else json.dumps(value, default=str)


def _text_score(document: dict[str, Any], query: TextQuery | str) -> int:
    """Every query word must occur (the default AND of simple_query_string); score = occurrences. `word*` is a prefix."""
    if isinstance(query, str):
        query = TextQuery(q=query)
    fields = document["fields"]
    text = _text(fields.get(query.field)) if query.field else " ".join(_text(v) for v in fields.values())
    words = _WORD.findall(text.lower())
    score = 0
    for term in query.q.lower().split():
        prefix = term.endswith("*")
        for part in _WORD.findall(term):
            hits = sum(1 for w in words if (w.startswith(part) if prefix else w == part))
            if not hits:
                return 0
            score += hits
    return score


def _sort_value(document: dict[str, Any], scope: Any) -> Any:
    if isinstance(scope, RecordFilterScope):
        return document.get(scope.property)
    if isinstance(scope, MetadataFilterScope):
        return document["metadata"].get(scope.metadata_property)
    if isinstance(scope, SuggestionFilterScope):
        return document["suggestions"].get(scope.question, {}).get(scope.property)
    if isinstance(scope, ResponseFilterScope):  # average over the (user's) responses, as the ES engine's "avg" mode
        key = scope.question or scope.property
        numbers = [r["values"].get(key) if scope.question else r.get(key) for r in _user_responses(document, scope.user)]
        numbers = [n for n in numbers if isinstance(n, (int, float))]
        return sum(numbers) / len(numbers) if numbers else None
    raise ValueError(f"cannot sort by scope {scope}")


def _sorted(documents: list[dict[str, Any]], sort: list[Any]) -> list[dict[str, Any]]:
    # Stable multi-key sort: apply keys last to first; documents missing a value go last either way (as in ES).
    for order in reversed(sort):
        present = [d for d in documents if _sort_value(d, order.scope) is not None]
        missing = [d for d in documents if _sort_value(d, order.scope) is None]
        present.sort(key=lambda d: _sort_value(d, order.scope), reverse=_value(order.order) == SortOrder.desc.value)
        documents = present + missing
    return documents


def _user_shuffle_key(user_id: Any, document: dict[str, Any]) -> str:
    # The ES engine orders a user's unsorted queue by random_score seeded with the user id: deterministic per user.
    return hashlib.sha256(f"{user_id}:{document['id']}".encode()).hexdigest()


@SearchEngine.register(engine_name="memory")
class MemorySearchEngine(SearchEngine):
    @classmethod
    async def new_instance(cls) -> MemorySearchEngine:
        return cls()

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    async def info(self) -> dict:
        return {"distribution": "curate-memory", "number": "1.0", "datasets": len(_INDEX)}

    async def create_index(self, dataset: Any) -> None:
        _INDEX.setdefault(dataset.id, {})

    async def delete_index(self, dataset: Any) -> None:
        _INDEX.pop(dataset.id, None)

    async def configure_metadata_property(self, dataset: Any, metadata_property: Any) -> None:
        _INDEX.setdefault(dataset.id, {})

    async def index_records(self, dataset: Any, records: Any) -> None:
        index = _INDEX.setdefault(dataset.id, {})
        for record in records:
            index[record.id] = _record_doc(record)

    async def partial_record_update(self, record: Any, **update: Any) -> None:
        document = _INDEX.get(record.dataset_id, {}).get(record.id)
        if document is not None:
            document.update({key: _value(value) for key, value in update.items()})

    async def delete_records(self, dataset: Any, records: Any) -> None:
        index = _INDEX.get(dataset.id, {})
        for record in records:
            index.pop(record.id, None)

    def _document_of(self, record: Any) -> dict[str, Any] | None:
        return _INDEX.get(record.dataset_id, {}).get(record.id)

    async def update_record_response(self, response: Any) -> None:
        document = self._document_of(response.record)
        if document is not None:
            entry = _response_doc(response)
            document["responses"] = [r for r in document["responses"] if r["id"] != entry["id"]] + [entry]

    async def delete_record_response(self, response: Any) -> None:
        document = self._document_of(response.record)
        if document is not None:
            document["responses"] = [r for r in document["responses"] if r["id"] != str(response.id)]

    async def update_record_suggestion(self, suggestion: Any) -> None:
        document = self._document_of(suggestion.record)
        if document is not None:
            document["suggestions"][suggestion.question.name] = _suggestion_doc(suggestion)

    async def delete_record_suggestion(self, suggestion: Any) -> None:
        document = self._document_of(suggestion.record)
        if document is not None:
            document["suggestions"].pop(suggestion.question.name, None)

    async def get_dataset_progress(self, dataset: Any) -> dict:
        if dataset.is_draft:
            return {}
        documents = _INDEX.get(dataset.id, {}).values()
        return {"total": len(documents), **Counter(d["status"] for d in documents)}

    async def get_dataset_user_progress(self, dataset: Any, user: Any) -> dict:
        if dataset.is_draft:
            return {}
        statuses = [r["status"] for d in _INDEX.get(dataset.id, {}).values() for r in _user_responses(d, user)]
        return {"total": len(statuses), **Counter(statuses)}

    async def search(
        self,
        dataset: Any,
        query: TextQuery | str | None = None,
        filter: Any = None,
        sort: list[Any] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Any = None,
    ) -> SearchResponses:
        documents = list(_INDEX.get(dataset.id, {}).values())
        scores: dict[str, float | None] = {}
        if query is not None:
            scored = [(d, _text_score(d, query)) for d in documents]
            documents = [d for d, s in scored if s > 0]
            scores = {d["id"]: float(s) for d, s in scored if s > 0}
        if filter is not None:
            documents = [d for d in documents if _matches(d, filter)]
        if sort:
            documents = _sorted(documents, sort)
        elif query is not None:
            documents.sort(key=lambda d: -scores[d["id"]])
        elif user_id is not None:
            documents.sort(key=lambda d: _user_shuffle_key(user_id, d))
        page = documents[offset : offset + limit]
        items = [SearchResponseItem(record_id=UUID(d["id"]), score=scores.get(d["id"])) for d in page]
        return SearchResponses(items=items, total=len(documents))

    async def compute_metrics_for(self, metadata_property: Any) -> Any:
        values = [
            v
            for d in _INDEX.get(metadata_property.dataset_id, {}).values()
            for v in _as_list(d["metadata"].get(metadata_property.name))
        ]
        if metadata_property.type == MetadataPropertyType.terms:
            counts = Counter(str(v) for v in values)
            ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            return TermsMetrics(total=len(values), values=[TermsMetrics.TermCount(term=t, count=c) for t, c in ordered])
        metrics = IntegerMetadataMetrics if metadata_property.type == MetadataPropertyType.integer else FloatMetadataMetrics
        return metrics(min=min(values, default=None), max=max(values, default=None))

    async def similarity_search(self, *args: Any, **kwargs: Any) -> SearchResponses:
        raise NotImplementedError("vector similarity search is not implemented by the in-memory test engine")
