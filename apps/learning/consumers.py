"""The tutor chat: `/ws/t/<slug>/tutor/`, a member asks, the answer streams back.

Client -> server: {"type": "ask", "question": "...", "assignment": "<uuid>" (optional)}.
Server -> client, per question:
  {"type": "start", "backend": "grounded" | "endpoint"}
  {"type": "chunk", "text": "..."}             (as many as the answer takes)
  {"type": "notice", "message": "..."}         (the endpoint failed: the lessons answer instead)
  {"type": "done", "citations": [{"kind": "run" | "exercise" | "lesson", "lesson_id" (lessons
  only, else null), "title", "url"}], "refused": null | kind}
or, without an answer, {"type": "error", "code": "rate_limited" | "quota" | "invalid" |
"busy" | "unavailable", "message": "..."}.

One question at a time per connection. A connection to a tenant the user cannot enter is
refused during the handshake (4404; 4403 for a suspended tenant), as the other streams are.
"""

from __future__ import annotations

import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.learning import tutoring
from apps.learning.tutor import check_question
from apps.tenants.access import TenantNotFound, TenantSuspended
from apps.tenants.consumers import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, socket_access


class TutorConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.busy = False
        try:
            access = await socket_access(
                self.scope["user"], self.scope["url_route"]["kwargs"]["tenant_slug"]
            )
        except TenantNotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except TenantSuspended:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.tenant = access.tenant
        await self.accept()

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or content.get("type") != "ask":
            await self._error("invalid", 'Send {"type": "ask", "question": "..."}.')
            return
        if self.busy:
            await self._error("busy", "Wait for the answer to your last question.")
            return
        self.busy = True
        try:
            await self._answer(str(content.get("question") or ""), content.get("assignment"))
        finally:
            self.busy = False

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def _answer(self, question: str, assignment_id) -> None:
        user = self.scope["user"]
        if assignment_id is not None:
            try:
                assignment_id = uuid.UUID(str(assignment_id))
            except ValueError:
                await self._error("invalid", "The assignment id is not a valid id.")
                return
        try:
            prepared = await database_sync_to_async(tutoring.prepare)(
                tenant=self.tenant, user=user, question=question, assignment_id=assignment_id
            )
        except tutoring.TutorRefused as refusal:
            await self._error(refusal.code, refusal.message)
            return
        refusal = check_question(prepared.request.question, prepared.policy)
        await self.send_json({"type": "start", "backend": prepared.backend_name})
        if refusal is not None:
            await self.send_json({"type": "chunk", "text": refusal.message})
            await self._finish(prepared, refusal.message, [], refused=refusal.kind.value)
            return
        async for event in tutoring.answer_stream(prepared, tenant_slug=self.tenant.slug):
            if isinstance(event, tutoring.FellBack):
                await self.send_json({"type": "notice", "message": event.message})
            elif isinstance(event, tutoring.Answered):
                await self._finish(
                    prepared, event.text, event.citations, backend=event.backend, usage=event.usage
                )
            else:
                await self.send_json({"type": "chunk", "text": event.text})

    async def _finish(
        self, prepared, text, citations, *, refused="", backend=None, usage=(0, 0)
    ) -> None:
        await database_sync_to_async(tutoring.exchange_record)(
            tenant=self.tenant,
            user=self.scope["user"],
            question=prepared.request.question,
            answer=text,
            citations=citations,
            refused=refused,
            backend=backend or prepared.backend_name,
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            assignment_id=prepared.assignment_id,
        )
        await self.send_json({"type": "done", "citations": citations, "refused": refused or None})
