"""The knowledge base of the demo agent: help-centre articles about "Orbitly", a fictional
team-planning SaaS, in an SQLite FTS5 table, queried with plain ``sqlite3``.

:func:`search` returns ranked :class:`Document` s with a relevance ``score`` in (0, 1)
derived from FTS5's BM25 rank (``None`` for articles added from the intent's category
because full-text search found too few)."""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass

# (doc id, category, title, body). Categories line up with the intents of intents.py.
DOCUMENTS: list[tuple[str, str, str, str]] = [
    ("kb-001", "billing", "Plans and prices",
     "Orbitly has three plans: Free for up to 5 members, Team at 8 EUR per member per month, and "
     "Business at 15 EUR per member per month with SSO and audit logs."),
    ("kb-002", "billing", "Changing your plan",
     "Owners can upgrade or downgrade the plan from Settings > Billing. Upgrades apply at once and are "
     "prorated; downgrades apply at the end of the billing period."),
    ("kb-003", "billing", "Invoices and receipts",
     "Every payment produces an invoice in PDF. Download invoices from Settings > Billing > Invoices. "
     "Add a VAT number and a billing address before the payment to have them on the invoice."),
    ("kb-004", "billing", "Refund policy",
     "Annual plans can be refunded within 30 days of the payment. Monthly plans are not refunded, but you "
     "can cancel at any time and keep access until the end of the month."),
    ("kb-005", "billing", "Payment methods",
     "We accept credit and debit cards, SEPA direct debit and bank transfer for annual Business plans. "
     "A failed card payment is retried three times over seven days."),
    ("kb-006", "billing", "Cancelling a subscription",
     "To cancel, open Settings > Billing and choose Cancel subscription. The workspace moves to the Free "
     "plan at the end of the period; no data is deleted."),
    ("kb-007", "billing", "Charged twice",
     "A double charge is usually a pending authorisation that disappears within five days. If both "
     "charges settle, contact billing support with the invoice numbers for a refund."),
    ("kb-008", "technical", "Sync is slow or stuck",
     "If boards do not sync, check the status page, then sign out and in again. Sync needs outbound "
     "HTTPS to api.orbitly.example on port 443; corporate proxies may block websockets."),
    ("kb-009", "technical", "Desktop app crashes on start",
     "Crashes at start-up are often a corrupted local cache. Quit the app, delete the cache folder and "
     "restart. Version 4.2 fixed a crash with external monitors."),
    ("kb-010", "technical", "Importing from spreadsheets",
     "Import tasks from CSV or XLSX with File > Import. The first row must hold column names; dates use "
     "ISO format. Imports are limited to 10,000 rows."),
    ("kb-011", "technical", "API rate limits",
     "The REST API allows 600 requests per minute per token. Responses over the limit return HTTP 429 "
     "with a Retry-After header; use exponential backoff."),
    ("kb-012", "technical", "Webhooks",
     "Webhooks send task events to your HTTPS endpoint with an HMAC signature header. Failed deliveries "
     "are retried for 24 hours with exponential backoff."),
    ("kb-013", "technical", "Calendar integration",
     "Connect Google or Outlook calendars from Settings > Integrations. Due dates appear as all-day "
     "events; changes sync both ways within a minute."),
    ("kb-014", "technical", "Error 500 when saving",
     "An error 500 while saving a board is usually an attachment over 100 MB. Remove the attachment or "
     "upload it to a linked drive, then save again."),
    ("kb-015", "technical", "Offline mode",
     "The mobile and desktop apps work offline. Changes are queued and merged when the connection "
     "returns; conflicting edits keep both versions as comments."),
    ("kb-016", "technical", "Browser support",
     "The web app supports the last two versions of Chrome, Firefox, Safari and Edge. Clear the browser "
     "cache if the page does not load after an update."),
    ("kb-017", "account", "Resetting your password",
     "Use Forgot password on the sign-in page to receive a reset link by email. The link expires after "
     "one hour. Passwords need at least 12 characters."),
    ("kb-018", "account", "Two-factor authentication",
     "Turn on two-factor authentication in Profile > Security with an authenticator app. Keep the "
     "recovery codes; support cannot disable 2FA without identity checks."),
    ("kb-019", "account", "Changing your email address",
     "Change the sign-in email in Profile > Account. We send a confirmation link to the new address; "
     "the change applies once it is confirmed."),
    ("kb-020", "account", "Deleting your account",
     "Deleting your account removes your profile and personal boards after 30 days. Workspace owners "
     "must transfer ownership first."),
    ("kb-021", "account", "Inviting team members",
     "Invite members from Workspace > Members by email. Invitations expire after seven days; guests can "
     "see only the boards they are invited to."),
    ("kb-022", "account", "Single sign-on",
     "Business plans support SAML single sign-on with Okta, Azure AD and Google Workspace. After SSO is "
     "enforced, members sign in only through the identity provider."),
    ("kb-023", "account", "Locked out of the account",
     "After ten failed sign-in attempts the account is locked for 15 minutes. Reset the password to "
     "unlock it at once."),
    ("kb-024", "account", "Transferring workspace ownership",
     "The current owner can transfer ownership in Workspace > Settings. The new owner must already be an "
     "admin of the workspace."),
    ("kb-025", "general", "What is Orbitly",
     "Orbitly is a planning tool for small teams: boards, timelines, recurring tasks and a shared "
     "calendar, on the web, desktop and mobile."),
    ("kb-026", "general", "Keyboard shortcuts",
     "Press question mark to show all shortcuts. N creates a task, slash opens search, and G then B "
     "jumps to the boards list."),
    ("kb-027", "general", "Templates",
     "Start a board from a template: sprint planning, content calendar, hiring pipeline or event "
     "planning. Save any board as a template for your workspace."),
    ("kb-028", "general", "Data export",
     "Export a workspace to JSON or CSV from Workspace > Settings > Export. Large exports are prepared in "
     "the background and sent by email."),
    ("kb-029", "general", "Security and privacy",
     "Data is encrypted in transit and at rest and stored in the EU. We never sell personal data; see "
     "the privacy policy for subprocessors."),
    ("kb-030", "general", "Contacting support",
     "Support answers by chat and email on weekdays from 8:00 to 18:00 CET. Business plans get a "
     "four-hour response time."),
]

_STOPWORDS = frozenset(
    "a an the and or but if of to in on at for with by from is are was were be been do does did i me my "
    "we our you your it its this that how what why when where who can could would should will not no "
    "there here have has had so as about please hi hello thanks".split()
)
_TERM = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Document:
    doc_id: str
    category: str
    title: str
    body: str
    score: float | None = None  # search relevance in (0, 1); None when not a full-text match


def connect(path: str) -> sqlite3.Connection:
    """Open the knowledge base and seed it when empty. One connection, used from the event loop."""
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS documents USING fts5(doc_id UNINDEXED, category UNINDEXED, title, body)"
    )
    (count,) = conn.execute("SELECT count(*) FROM documents").fetchone()
    if count == 0:
        with conn:
            conn.executemany("INSERT INTO documents (doc_id, category, title, body) VALUES (?, ?, ?, ?)", DOCUMENTS)
    return conn


@functools.lru_cache(maxsize=256)  # the same questions come back: each one's expression is built once
def _match_expression(text: str) -> str:
    terms = [t for t in _TERM.findall(text.lower()) if t not in _STOPWORDS and len(t) > 1]
    seen: list[str] = []
    for term in terms:
        if term not in seen:
            seen.append(term)
    # Quoted terms, OR-ed: user text never reaches FTS5 query syntax.
    return " OR ".join(f'"{t}"' for t in seen[:16])


def search(conn: sqlite3.Connection, text: str, *, category: str | None = None, limit: int = 3) -> list[Document]:
    """Top ``limit`` documents by BM25; topped up from the intent's category when FTS finds fewer."""
    found: list[Document] = []
    expression = _match_expression(text)
    if expression:
        rows = conn.execute(
            "SELECT doc_id, category, title, body, -bm25(documents, 0.0, 0.0, 4.0, 1.0) AS rank FROM documents "
            "WHERE documents MATCH ? ORDER BY rank DESC LIMIT ?",
            (expression, limit),
        ).fetchall()
        found = [Document(*row[:4], score=_relevance(row[4])) for row in rows]
    if len(found) < limit:
        have = {d.doc_id for d in found}
        rows = conn.execute(
            "SELECT doc_id, category, title, body FROM documents WHERE category = ? ORDER BY doc_id",
            (category or "general",),
        ).fetchall()
        found += [Document(*row) for row in rows if row[0] not in have][: limit - len(found)]
    return found


def _relevance(rank: float) -> float:
    """BM25 (higher is better, unbounded) squashed into (0, 1): r / (1 + r)."""
    rank = max(0.0, float(rank or 0.0))
    return round(rank / (1.0 + rank), 3)


def get_document(conn: sqlite3.Connection, doc_id: str) -> Document | None:
    row = conn.execute(
        "SELECT doc_id, category, title, body FROM documents WHERE doc_id = ?", (doc_id,)
    ).fetchone()
    return Document(*row) if row else None


def count_documents(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM documents").fetchone()[0]
