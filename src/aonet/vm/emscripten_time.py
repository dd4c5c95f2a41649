"""Calendar functions of the emscripten host, in UTC, as AO's loader computes them under TZ=UTC.

Why our own civil-date arithmetic: JavaScript's Date covers years Python's datetime cannot, and a
module may hand the host any 32-bit time value; integer formulas give the same fields for all of them.
The time zone is fixed to UTC (offset 0, no daylight saving) so every CU writes the same bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

DAY = 86400
UTC_NAME = "Coordinated Universal Time"   # what Node prints for TZ=UTC in Date.toTimeString()


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


@dataclass
class Tm:
    sec: int = 0
    min: int = 0
    hour: int = 0
    mday: int = 1
    mon: int = 0      # 0..11
    year: int = 70    # years since 1900
    wday: int = 4
    yday: int = 0
    isdst: int = 0
    gmtoff: int = 0


def gmtime(t: int) -> Tm:
    days, secs = divmod(t, DAY)
    y, m, d = civil_from_days(days)
    return Tm(sec=secs % 60, min=secs // 60 % 60, hour=secs // 3600, mday=d, mon=m - 1, year=y - 1900,
              wday=(days + 4) % 7, yday=days - days_from_civil(y, 1, 1))


def timegm(tm: Tm) -> int:
    """Seconds since the epoch; out-of-range fields carry over, as JavaScript's Date constructor does."""
    y = tm.year + 1900 + tm.mon // 12
    days = days_from_civil(y, tm.mon % 12 + 1, 1) + tm.mday - 1
    return days * DAY + tm.hour * 3600 + tm.min * 60 + tm.sec


def is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


_WDAY = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MON = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December"]
_EXPAND = {"%c": "%a %b %d %H:%M:%S %Y", "%D": "%m/%d/%y", "%F": "%Y-%m-%d", "%h": "%b", "%r": "%I:%M:%S %p",
           "%R": "%H:%M", "%T": "%H:%M:%S", "%x": "%m/%d/%y", "%X": "%H:%M:%S",
           "%Ec": "%c", "%EC": "%C", "%Ex": "%m/%d/%y", "%EX": "%H:%M:%S", "%Ey": "%y", "%EY": "%Y",
           "%Od": "%d", "%Oe": "%e", "%OH": "%H", "%OI": "%I", "%Om": "%m", "%OM": "%M", "%OS": "%S",
           "%Ou": "%u", "%OU": "%U", "%OV": "%V", "%Ow": "%w", "%OW": "%W", "%Oy": "%y"}


def _iso_year_week(tm: Tm) -> tuple[int, int]:
    y = tm.year + 1900
    wday = (tm.wday + 6) % 7                  # Monday = 0
    week = (tm.yday - wday + 10) // 7
    if week < 1:
        y -= 1
        dec31_yday = 365 + is_leap(y) - 1
        dec31_wday = (wday - tm.yday - 1) % 7
        return y, (dec31_yday - dec31_wday + 10) // 7
    if week == 53 and tm.yday - wday + 3 >= 365 + is_leap(y):   # the Thursday is next year's
        return y + 1, 1
    return y, week


def strftime(pattern: str, tm: Tm, zone: str) -> str:
    """C-locale strftime, following the conversions AO's loader implements."""
    for k, v in _EXPAND.items():
        pattern = pattern.replace(k, v)
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c != "%" or i + 1 >= len(pattern):
            out.append(c)
            i += 1
            continue
        f = pattern[i + 1]
        i += 2
        y = tm.year + 1900
        if f == "a": out.append(_WDAY[tm.wday % 7][:3])
        elif f == "A": out.append(_WDAY[tm.wday % 7])
        elif f == "b": out.append(_MON[tm.mon % 12][:3])
        elif f == "B": out.append(_MON[tm.mon % 12])
        elif f == "C": out.append(f"{y // 100:02d}")
        elif f == "d": out.append(f"{tm.mday:02d}")
        elif f == "e": out.append(f"{tm.mday:2d}")
        elif f == "g": out.append(f"{_iso_year_week(tm)[0] % 100:02d}")
        elif f == "G": out.append(str(_iso_year_week(tm)[0]))
        elif f == "H": out.append(f"{tm.hour:02d}")
        elif f == "I": out.append(f"{(tm.hour % 12) or 12:02d}")
        elif f == "j": out.append(f"{tm.yday + 1:03d}")
        elif f == "m": out.append(f"{tm.mon + 1:02d}")
        elif f == "M": out.append(f"{tm.min:02d}")
        elif f == "n": out.append("\n")
        elif f == "p": out.append("AM" if 0 <= tm.hour < 12 else "PM")
        elif f == "S": out.append(f"{tm.sec:02d}")
        elif f == "t": out.append("\t")
        elif f == "u": out.append(str(tm.wday or 7))
        elif f == "U": out.append(f"{(tm.yday + 7 - tm.wday) // 7:02d}")
        elif f == "V": out.append(f"{_iso_year_week(tm)[1]:02d}")
        elif f == "w": out.append(str(tm.wday))
        elif f == "W": out.append(f"{(tm.yday + 7 - (tm.wday + 6) % 7) // 7:02d}")
        elif f == "y": out.append(str(y)[2:] if len(str(y)) > 2 else f"{y % 100:02d}")
        elif f == "Y": out.append(str(y))
        elif f == "z":
            off = tm.gmtoff // 60
            out.append(("+" if off >= 0 else "-") + f"{abs(off) // 60 * 100 + abs(off) % 60:04d}")
        elif f == "Z": out.append(zone)
        elif f == "%": out.append("%")
        else: out.append("%" + f)
    return "".join(out)
