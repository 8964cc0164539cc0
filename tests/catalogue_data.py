"""A generated catalogue for the catalogue tests and the benchmark: the real demo titles plus
generated ones built from real words (some in traditional characters and full-width forms)."""

from __future__ import annotations

import random

from kiosk.catalogue.services import BookFields, apply_book, source_key_for
from kiosk.catalogue.text import _isbn13_check

WORDS = [
    "春天",
    "秋天",
    "城市",
    "乡村",
    "故事",
    "江南",
    "西湖",
    "长江",
    "黄河",
    "人生",
    "时光",
    "记忆",
    "家园",
    "山河",
    "岁月",
    "少年",
    "青春",
    "梦想",
    "红色",
    "革命",
    "英雄",
    "历史",
    "文化",
    "艺术",
    "音乐",
    "书法",
    "诗词",
    "科学",
    "自然",
    "宇宙",
    "海洋",
    "森林",
    "花园",
    "茶叶",
    "美食",
    "健康",
    "养生",
    "旅行",
    "中国",
    "世界",
    "未来",
    "传统",
    "民间",
    "传说",
    "童话",
    "教育",
    "家庭",
    "父亲",
    "母亲",
    "孩子",
    "朋友",
    "老人",
    "社区",
    "红楼",
    "紅葉",
    "臺灣",
    "漢字",
    "風景",
    "電影",
    "學習",
    "銀行",
    "重庆",
    "杭州",
    "上海",
    "北京",
]
AUTHORS = [
    "王安",
    "李明",
    "张伟",
    "刘洋",
    "陈静",
    "杨帆",
    "赵磊",
    "黄敏",
    "周杰",
    "吴芳",
    "徐强",
    "孙丽",
    "马超",
    "朱红",
    "胡军",
    "郭涛",
    "林峰",
    "何平",
    "高翔",
    "罗兰",
]
PUBLISHERS = ("人民文学出版社", "中华书局", "浙江人民出版社", "杭州出版社", "上海译文出版社", "作家出版社", "中信出版社", "商务印书馆")
CLASSES = ("I247.5", "K928", "G8", "R161", "TS97", "J2", "D26", "B82", "O1", "Z22")


def generated_isbn(n: int) -> str:
    """A valid-checksum ISBN in 978-7-99…, made up for tests (not a real book's number)."""
    body = f"978799{n:06d}"
    return body + _isbn13_check(body)


def generated_books(count: int, seed: int = 7) -> list[BookFields]:
    rng = random.Random(seed)
    books = []
    for n in range(count):
        title = "".join(rng.sample(WORDS, rng.choice((2, 2, 3))))
        if n % 5 == 0:
            title += f"（第{n % 9 + 1}卷）"
        books.append(
            BookFields(
                title=title,
                authors=rng.choice(AUTHORS),
                publisher=rng.choice(PUBLISHERS),
                year=rng.randint(1980, 2025),
                isbn=generated_isbn(n) if n % 3 else None,
                call_number=rng.choice(CLASSES) + f"/{n % 97}",
                subjects=rng.choice(WORDS),
            )
        )
    return books


def load_books(session, books: list[BookFields]) -> None:
    """Inside the caller's transaction."""
    for fields in books:
        apply_book(session, None, fields, source_key_for(fields) + ("" if fields.isbn else f"|{id(fields)}"))
