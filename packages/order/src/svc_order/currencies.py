"""Active ISO 4217 currency codes that have a minor unit, with that unit (decimal places).

A static table on purpose: money is validated against it on every order, so it must not depend on
the machine's locale data. Source: ISO 4217 List One as amended through 2025 (ANG gave way to XCG,
ZWL to ZWG, SLL to SLE; HRK and BGN went to the euro). Codes whose minor unit is "N.A." (XAU,
XAG, XPD, XPT, XDR, XSU, XUA, XBA-XBD, XTS, XXX) are left out: an amount in them has no integer
minor unit. Fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW) are active and included.
"""

from __future__ import annotations

from types import MappingProxyType

_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
    "CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP "
    "GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT "
    "LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN "
    "NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE "
    "SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES "
    "WST XCD XCG YER ZAR ZMW ZWG"
)

MINOR_UNITS: MappingProxyType[str, int] = MappingProxyType(
    {
        code: digits
        for codes, digits in ((_ZERO, 0), (_TWO, 2), (_THREE, 3), (_FOUR, 4))
        for code in codes.split()
    }
)


def is_supported(code: str) -> bool:
    """True for an active ISO 4217 code, in upper case, that has a minor unit."""
    return code in MINOR_UNITS
