#!/usr/bin/env python3
"""Build scenarios/data/countries.csv from the shared reference file and rd_sources.csv.

Standard library only. Run from the repo root:

    python3 scenarios/data/build_countries.py [path/to/countries_reference.csv]

Default reference path: <repo root>/../shared/data/countries_reference.csv.
The rules implemented here are documented in scenarios/data/README.md.
"""
import csv
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_REF = os.path.join(REPO, "..", "shared", "data", "countries_reference.csv")
RD_FILE = os.path.join(HERE, "rd_sources.csv")
OUT_FILE = os.path.join(HERE, "countries.csv")

# Bloc rule (README "Blocs"): A = economies enforcing semiconductor /
# advanced-technology export controls in the US-led coordination; B = China,
# Russia, Iran, Belarus, Venezuela, Cuba, Syria (and North Korea, not included);
# everything else, Singapore included, is nonaligned.
EU27 = [
    "AUT", "BEL", "BGR", "HRV", "CYP", "CZE", "DNK", "EST", "FIN", "FRA",
    "DEU", "GRC", "HUN", "IRL", "ITA", "LVA", "LTU", "LUX", "MLT", "NLD",
    "POL", "PRT", "ROU", "SVK", "SVN", "ESP", "SWE",
]
BLOC_A = set(EU27) | {
    "USA", "GBR", "JPN", "KOR", "TWN", "CAN", "AUS", "NZL", "NOR", "CHE",
    "ISL", "ISR",
}
BLOC_B = {"CHN", "RUS", "IRN", "BLR", "PRK", "VEN", "CUB", "SYR"}

NONALIGNED = [
    # G20 members outside A/B
    "ARG", "BRA", "IND", "IDN", "MEX", "SAU", "ZAF", "TUR",
    # named in SEED-FACTS.md
    "SGP",
    # other high income
    "ARE", "QAT", "CHL", "URY",
    # upper-middle income
    "MYS", "THA", "KAZ", "COL", "PER", "CRI", "SRB", "ARM", "GEO", "JOR",
    # lower-middle income
    "EGY", "NGA", "PAK", "BGD", "VNM", "PHL", "KEN", "GHA", "MAR", "DZA",
    "TUN", "UKR", "UZB", "LKA", "MNG", "SEN", "TZA", "MMR",
    # low income
    "ETH", "UGA", "RWA", "BFA", "MLI", "MOZ", "MDG", "COD", "TCD",
]
B_INCLUDED = ["CHN", "RUS", "IRN", "BLR", "VEN", "CUB", "SYR"]
CODES = sorted(set(BLOC_A) | set(B_INCLUDED) | set(NONALIGNED))

INCOME_MAP = {
    "High income": "high",
    "Upper middle income": "upper_middle",
    "Lower middle income": "lower_middle",
    "Low income": "low",
}
# Economies without a usable World Bank income group in the reference file.
INCOME_OVERRIDE = {
    "TWN": "high",          # not in World Bank data; high income by any measure
    "VEN": "upper_middle",  # "Not classified" in the 2022 list; last WB group
                            # before it was left unclassified (recalled, see README)
}
# GDP, billions of current USD, 2019, where the reference file lacks a 2019
# current-USD figure (see README "Fallbacks").
GDP_OVERRIDE_BN = {
    "SGP": 372.0,  # IMF World Economic Outlook, 2019, current USD
    "TWN": 611.0,  # DGBAS / IMF World Economic Outlook, 2019, current USD
}
NAME_OVERRIDE = {"TWN": "Taiwan"}
LATLON_OVERRIDE = {"TWN": (25.0330, 121.5654)}  # Taipei


def num(s):
    s = (s or "").strip()
    return float(s) if s else None


def clamp(x, lo=0.0, hi=1.0):
    return max(lo, min(hi, x))


def main():
    ref_path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_REF
    with open(ref_path, newline="", encoding="utf-8") as f:
        ref = {r["iso3"]: r for r in csv.DictReader(f)}
    with open(RD_FILE, newline="", encoding="utf-8") as f:
        rd_src = {r["code"]: r for r in csv.DictReader(f)}

    rows = {}
    notes = []
    for code in CODES:
        r = ref[code]
        bloc = "A" if code in BLOC_A else ("B" if code in BLOC_B else "nonaligned")
        income = INCOME_OVERRIDE.get(code) or INCOME_MAP[r["income"]]
        if code in GDP_OVERRIDE_BN:
            gdp = GDP_OVERRIDE_BN[code]
            notes.append(f"{code}: gdp from published figure {gdp} bn")
        elif num(r["gdp_musd_2019"]) is not None:
            gdp = num(r["gdp_musd_2019"]) / 1000.0
        else:
            gdp = num(r["gdp_musd_ne50"]) / 1000.0
            notes.append(f"{code}: gdp from gdp_musd_ne50")
        pop = num(r["population_2019"])
        if pop is None:
            pop = num(r["population_ne50"])
            notes.append(f"{code}: population from population_ne50")
        lat, lon = LATLON_OVERRIDE.get(code, (num(r["lat"]), num(r["lon"])))
        src = rd_src[code]
        rows[code] = {
            "code": code,
            "name": NAME_OVERRIDE.get(code, r["name"]),
            "bloc": bloc,
            "income": income,
            "gdp": gdp,
            "rd": num(src["rd"]),
            "pop": pop,
            "lat": lat,
            "lon": lon,
        }

    # R&D fallback: median of the published values of the same income group.
    for code, row in rows.items():
        if row["rd"] is None:
            peers = [x["rd"] for c, x in rows.items()
                     if x["income"] == row["income"] and rd_src[c]["source"] != "none"]
            row["rd"] = statistics.median(peers)
            notes.append(f"{code}: rd = median of {len(peers)} published "
                         f"{row['income']} values = {row['rd']:.5f}")

    # absorptive: affine in log10 GDP per capita, scaled over the file.
    lpc = {c: math.log10(x["gdp"] * 1e9 / x["pop"]) for c, x in rows.items()}
    lpc_min, lpc_max = min(lpc.values()), max(lpc.values())
    # openness: equal weights on economic smallness (log GDP) and development.
    lg = {c: math.log10(x["gdp"]) for c, x in rows.items()}
    lg_min, lg_max = min(lg.values()), max(lg.values())
    for c, x in rows.items():
        dev = (lpc[c] - lpc_min) / (lpc_max - lpc_min)
        small = 1.0 - (lg[c] - lg_min) / (lg_max - lg_min)
        x["absorptive"] = clamp(0.25 + 0.75 * dev)
        x["openness"] = clamp(0.10 + 0.45 * small + 0.45 * dev)

    cols = ["code", "name", "bloc", "income", "gdp", "rd", "absorptive",
            "openness", "lat", "lon"]
    with open(OUT_FILE, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for code in CODES:
            x = rows[code]
            w.writerow([x["code"], x["name"], x["bloc"], x["income"]]
                       + [f"{round(x[k], 4):.4f}" for k in cols[4:]])
    for n in notes:
        print(n, file=sys.stderr)
    print(f"wrote {len(CODES)} rows to {os.path.relpath(OUT_FILE, REPO)}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
