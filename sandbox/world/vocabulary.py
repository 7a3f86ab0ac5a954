"""Words the world is written in: Russian names, companies, products, comment templates,
INN check digits. Pure data and small pure functions; no randomness of its own (callers pass
a ``random.Random``)."""

from __future__ import annotations

import random
import re

MALE_SURNAMES = [
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков",
    "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов",
    "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв",
    "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов",
    "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв", "Ильин", "Максимов", "Поляков",
    "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов", "Жуков",
]  # fmt: skip
INVARIANT_SURNAMES = ["Коваленко", "Шевченко", "Бондаренко", "Черных", "Белых", "Седых", "Ткаченко"]
MALE_NAMES = [
    "Александр", "Алексей", "Андрей", "Дмитрий", "Евгений", "Иван", "Игорь", "Кирилл", "Максим",
    "Михаил", "Николай", "Олег", "Павел", "Роман", "Сергей", "Юрий", "Владимир", "Виктор", "Артём",
]  # fmt: skip
FEMALE_NAMES = [
    "Анна", "Виктория", "Дарья", "Екатерина", "Елена", "Ирина", "Ксения", "Марина", "Мария",
    "Наталья", "Ольга", "Светлана", "Татьяна", "Юлия", "Алина", "Людмила", "Вероника",
]  # fmt: skip
FATHER_NAMES = [
    "Александр", "Алексей", "Андрей", "Владимир", "Дмитрий", "Иван", "Михаил", "Николай", "Пётр",
    "Сергей", "Юрий", "Виктор", "Олег", "Павел",
]  # fmt: skip

COMPANY_ROOTS = [
    "Строй", "Техно", "Агро", "Энерго", "Металл", "Транс", "Пром", "Инвест", "Мед", "Фарм", "Нефте",
    "Газ", "Лес", "Хим", "Электро", "Авто", "Тепло", "Гидро", "Север", "Урал", "Волга", "Сибирь",
]  # fmt: skip
COMPANY_TAILS = [
    "Снаб", "Сервис", "Групп", "Торг", "Комплект", "Ресурс", "Систем", "Проект", "Маркет", "Трейд",
    "Лайн", "Холдинг", "Монтаж", "Альянс", "Логистик", "Инжиниринг",
]  # fmt: skip
LEGAL_FORMS = ["ООО", "ООО", "ООО", "ООО", "АО", "ПАО", "ЗАО"]
REGIONS = ["77", "78", "50", "66", "16", "52", "54", "63", "23", "02", "74", "61", "59", "24", "36"]

PRODUCTS = [
    "офисной мебели", "серверного оборудования", "упаковочных материалов", "спецодежды",
    "строительных смесей", "канцтоваров", "металлопроката", "кабельной продукции",
    "климатического оборудования", "запчастей для спецтехники", "светодиодных светильников",
    "складских стеллажей", "лакокрасочных материалов", "электроинструмента", "сантехники",
]  # fmt: skip
CITIES = ["Казань", "Екатеринбург", "Новосибирск", "Самару", "Нижний Новгород", "Краснодар", "Пермь"]
MONTHS_IN = ["январе", "феврале", "марте", "апреле", "мае", "июне", "сентябре", "октябре", "ноябре"]
COMPETITORS = ["«ПромРесурс»", "«СнабЦентр»", "«Альфа-Трейд»", "«МегаОпт»", "«Регион-Поставка»"]

# The comments a manager writes on a lost deal, by the true reason (canonical code, or one of
# the reasons the demo mapping does not know). Placeholders are filled by ``fill``.
COMMENT_TEMPLATES: dict[str, list[str]] = {
    "no_budget": [
        "Клиент сообщил, что бюджет на этот квартал исчерпан, просил вернуться через {months} месяца.",
        "Бюджет на закупку {product} в этом году не согласован, ЛПР обещал вернуться к вопросу в {month}.",
        "Финансовый директор заморозил закупки до утверждения бюджета, перезвонить в {month}.",
        "Денег на полный объём нет, частичная поставка клиенту неинтересна.",
    ],
    "other_supplier": [
        "Работают с {competitor}, менять поставщика пока не готовы.",
        "У клиента давний договор с {competitor}, наше КП взяли для сравнения цен.",
        "Ушли к {competitor}: там дали отсрочку платежа {days} дней.",
        "Закупщик сказал, что поставщик уже выбран, подробности не сообщил.",
    ],
    "high_price": [
        "Наша цена выше конкурентов примерно на {pct}%, скидку согласовать не удалось.",
        "Клиент считает цену завышенной, нашёл аналог дешевле на {pct}%.",
        "Не прошли по цене: победитель предложил на {pct}% ниже.",
    ],
    "not_planned": [
        "Закупка {product} в этом году не планируется, вернуться в {month}.",
        "Проект перенесли на следующий год, закупок до этого не будет.",
        "Клиент только собирает информацию, закупку планируют не раньше {month}.",
    ],
    "not_fit": [
        "Продукция не подходит по техническим требованиям заказчика.",
        "Клиенту нужны сертификаты, которых у нас нет по этой позиции.",
        "Не смогли предложить нужную комплектацию {product}, клиент ищет под своё ТЗ.",
    ],
    "not_interested": [
        "Клиент не заинтересован в предложении, просил больше не звонить.",
        "Входящая заявка оказалась ошибочной, потребности в {product} нет.",
        "ЛПР выслушал и отказался, интереса к продукту нет.",
    ],
    "delivery_terms": [
        "Нужна поставка за {days} дней, мы можем только за {days2}.",
        "Не устроила доставка в {city} за счёт покупателя.",
        "Клиент хочет отсрочку {days} дней, мы работаем только по предоплате.",
    ],
    "unreachable": [
        "Клиент не выходит на связь уже две недели, на письма не отвечает.",
        "Звонил {n} раз, трубку не берут, письма остаются без ответа.",
    ],
    "need_gone": [
        "Потребность отпала: объект заморожен заказчиком.",
        "Клиент передумал и решил отложить проект на неопределённый срок.",
    ],
    "tender_cancelled": [
        "Заказчик отменил закупку на площадке, новой даты нет.",
        "Тендер снят с публикации, заказчик пересматривает ТЗ.",
    ],
    "other": [
        "Компания клиента ликвидируется, закупки прекращены.",
        "У клиента сменилось руководство, новые решения пока не принимаются.",
    ],
}
# what a careless manager types instead of a comment (all shorter than ten characters)
SHORT_COMMENTS = ["нет", "дорого", "-", "отказ", "не актуал", "...", "перезвон", "слив", "нет денег"]

TRANSLIT = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
        "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
        "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
        "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    }
)  # fmt: skip


def translit(text: str) -> str:
    return text.lower().translate(TRANSLIT)


def person_name(rng: random.Random, female: bool | None = None) -> tuple[str, str, str]:
    """(surname, first name, patronymic), grammatically agreeing in gender."""
    if female is None:
        female = rng.random() < 0.45
    surname = rng.choice(MALE_SURNAMES) if rng.random() < 0.9 else rng.choice(INVARIANT_SURNAMES)
    father = rng.choice(FATHER_NAMES)
    if female:
        if surname.endswith(("ов", "ев", "ёв", "ин")):
            surname += "а"
        first = rng.choice(FEMALE_NAMES)
        patronymic = _patronymic(father, female=True)
    else:
        first = rng.choice(MALE_NAMES)
        patronymic = _patronymic(father, female=False)
    return surname, first, patronymic


def _patronymic(father: str, female: bool) -> str:
    if father.endswith("й"):
        stem = father[:-1] + ("евна" if female else "евич")
    elif father == "Пётр":
        stem = "Петровна" if female else "Петрович"
    else:
        stem = father + ("овна" if female else "ович")
    return stem


def phone(rng: random.Random) -> str:
    """A Russian mobile number as +7XXXXXXXXXX."""
    return "+79" + "".join(str(rng.randrange(10)) for _ in range(9))


def format_phone(number: str, style: int) -> str:
    """The same number as different systems keep it."""
    d = number[2:]
    if style == 1:
        return f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}"
    if style == 2:
        return f"8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}"
    return number


def fill(template: str, rng: random.Random) -> str:
    return template.format(
        months=rng.choice([2, 3, 4]),
        month=rng.choice(MONTHS_IN),
        product=rng.choice(PRODUCTS),
        competitor=rng.choice(COMPETITORS),
        days=rng.choice([14, 30, 45, 60]),
        days2=rng.choice([60, 75, 90]),
        pct=rng.choice([7, 10, 12, 15, 20, 25]),
        city=rng.choice(CITIES),
        n=rng.choice([4, 5, 6, 7]),
    )


# -- INN (taxpayer id) ---------------------------------------------------------------------
_W10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_W11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_W12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_NON_DIGITS = re.compile(r"\D+")


def _check(digits: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10)


def inn_is_valid(inn: str) -> bool:
    """True for a 10-digit (legal entity) or 12-digit (individual) INN with correct check digits."""
    if not inn.isdigit():
        return False
    if len(inn) == 10:
        return inn[9] == _check(inn[:9], _W10)
    if len(inn) == 12:
        return inn[10] == _check(inn[:10], _W11) and inn[11] == _check(inn[:11], _W12)
    return False


def inn_digits(rendered: str | None) -> str:
    """The digits of an INN as a system wrote it ("ИНН 77 0123 4567" -> "7701234567")."""
    return _NON_DIGITS.sub("", rendered or "")


def make_inn(rng: random.Random, individual: bool = False) -> str:
    body = rng.choice(REGIONS) + "".join(str(rng.randrange(10)) for _ in range(8 if individual else 7))
    if individual:
        body += _check(body, _W11)
        return body + _check(body, _W12)
    return body + _check(body, _W10)


def break_inn(inn: str) -> str:
    """The same INN with a wrong last check digit: an impossible INN."""
    return inn[:-1] + str((int(inn[-1]) + 1 + (int(inn[0]) % 3)) % 10)


def render_inn(inn: str, style: str) -> str:
    if style == "spaced":
        return f"{inn[:2]} {inn[2:6]} {inn[6:]}"
    if style == "prefixed":
        return f"ИНН {inn}"
    return inn
