"""A staff edit of a book in the kiosk's server computes pinyin without loading pypinyin there
(its dictionaries cost ~55 MiB, kept until a restart): a child process answers, and an edit
that leaves the title and authors alone reuses the stored pinyin."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import select

from kiosk.catalogue import search, text
from kiosk.catalogue.models import Book
from tests.helpers import csrf_token


@pytest.fixture
def server_without_pypinyin(monkeypatch):
    """This test process as the kiosk's server is: pypinyin not loaded, and loading it here
    fails the test. Counts the child processes started for pinyin."""

    def refuse():
        raise AssertionError("pypinyin loaded in the server process")

    monkeypatch.delitem(sys.modules, "pypinyin", raising=False)
    monkeypatch.setattr(text, "_pinyin", refuse)
    children: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(command, *args, **kwargs):
        children.append(list(command))
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(text.subprocess, "run", counting_run)
    return children


def _edit(client, book: Book, **changes) -> int:
    token = csrf_token(client, f"/staff/catalogue/book/{book.id}")
    form = {"csrf_token": token, "title": book.title, "authors": book.authors, "publisher": book.publisher, "year": book.year or ""}
    form |= {"isbn": book.isbn or "", "call_number": book.call_number, "subjects": book.subjects, "summary": book.summary} | changes
    return client.post(f"/staff/catalogue/book/{book.id}", data=form).status_code


def test_a_title_edit_gets_its_pinyin_from_a_child_process(staff_client, session, books, server_without_pypinyin):
    """Shown to fail without the safeguard: with save_book computing pinyin in process (as
    before), the edit reaches the refusing _pinyin above (500 here)."""
    book = session.scalar(select(Book).where(Book.title == "围城"))
    assert _edit(staff_client, book, title="重庆森林与银行家", authors="王家卫") == 302
    session.rollback()
    edited = session.get(Book, book.id)
    assert (edited.pinyin_full, edited.pinyin_initials) == ("chongqingsenlinyuyinhangjia", "cqslyyhj")
    assert edited.pinyin_other.split(text.FIELD_BREAK) == ["wangjiawei", "wjw"]
    assert len(server_without_pypinyin) == 1 and server_without_pypinyin[0][-1] == text.__file__
    assert search.search(session, "cqslyy").hits[0].id == book.id
    assert search.search(session, "wjw").hits[0].id == book.id


def test_an_edit_that_keeps_title_and_authors_starts_no_child(staff_client, session, books, server_without_pypinyin):
    book = session.scalar(select(Book).where(Book.title == "红楼梦"))
    before = (book.pinyin_title, book.pinyin_other, book.pinyin_full, book.pinyin_initials)
    assert _edit(staff_client, book, call_number="I242.47/1", year="1982") == 302
    session.rollback()
    edited = session.get(Book, book.id)
    assert edited.call_number == "I242.47/1"
    assert (edited.pinyin_title, edited.pinyin_other, edited.pinyin_full, edited.pinyin_initials) == before
    assert server_without_pypinyin == []
    assert search.search(session, "hlm").hits[0].id == book.id


def test_a_new_book_gets_its_pinyin_from_a_child_process(staff_client, session, books, server_without_pypinyin):
    token = csrf_token(staff_client, "/staff/catalogue/book/new")
    response = staff_client.post("/staff/catalogue/book/new", data={"csrf_token": token, "title": "银行里的故事", "authors": "张三"})
    assert response.status_code == 302
    session.rollback()
    book = session.scalar(select(Book).where(Book.title == "银行里的故事"))
    assert book.pinyin_initials == "yhldgs" and len(server_without_pypinyin) == 1


def test_when_the_child_fails_the_edit_still_saves(staff_client, session, books, monkeypatch):
    """The fallback: a child that cannot start costs memory, not the librarian's edit."""

    def broken(*args, **kwargs):
        raise OSError("no child for you")

    monkeypatch.delitem(sys.modules, "pypinyin", raising=False)
    monkeypatch.setattr(text.subprocess, "run", broken)
    book = session.scalar(select(Book).where(Book.title == "围城"))
    assert _edit(staff_client, book, title="长安十二时辰") == 302
    session.rollback()
    assert session.get(Book, book.id).pinyin_initials == "casesc"


def test_the_child_alone_never_loads_the_kiosk():
    """pinyin_many in a fresh interpreter: the answer comes back and this process has not
    imported pypinyin (the child did)."""
    program = (
        "import json, sys; from kiosk.catalogue.text import pinyin_many; "
        "answer = pinyin_many(['重庆森林', '银行', '', 'Python编程']); "
        "print(json.dumps([answer, 'pypinyin' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=120)
    answer, loaded = json.loads(done.stdout)
    assert answer == [["chongqingsenlin", "cqsl"], ["yinhang", "yh"], ["", ""], ["pythonbiancheng", "pbc"]]
    assert loaded is False
