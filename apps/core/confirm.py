"""Confirmation of an action that is hard to undo: its form posts once to ask, and the
confirmation page posts again with `confirm=yes` to act (no JavaScript needed)."""

from django.shortcuts import render

CONFIRM_FIELD = "confirm"


def confirmed(request) -> bool:
    return request.POST.get(CONFIRM_FIELD) == "yes"


def confirm_page(
    request, *, title: str, question: str, consequence: str, submit: str, back: str, keep=None
):
    """The page that asks (200; nothing has changed): `submit` acts, `back` is where not acting
    leads; `keep` holds form fields to post again (e.g. where to go next)."""
    context = {
        "title": title,
        "question": question,
        "consequence": consequence,
        "submit": submit,
        "back": back,
        "keep": keep or {},
        "action": request.path,
    }
    return render(request, "confirm.html", context)
