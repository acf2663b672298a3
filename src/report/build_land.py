#!/usr/bin/env python3
"""Rebuild land_110m.txt, the land outlines drawn under the report's world map.

Input: land-110m.json of the npm package world-atlas 2.0.2 (Natural Earth
1:110m land, version 4.1.0, as TopoJSON). Get it with
`npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz`, then run
(Python 3, standard library only):

    python3 src/report/build_land.py package/land-110m.json > src/report/land_110m.txt

Output: one ring of a land polygon per line, `o` (outer ring) or `h` (a
hole: the Caspian Sea) then `lon,lat` pairs in decimal
degrees (two decimals, about 1 km: the 1:110m data's own precision is
coarser), separated by spaces; the ring closes on its first point, which
is not repeated. Rings are written in the order of the file's polygons.
"""
import json
import sys


def decode_arcs(topo):
    """Absolute (lon, lat) of every arc: TopoJSON arcs are quantized and
    delta-encoded."""
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs, indices):
    """A ring from arc indices (~i, that is -i - 1, is arc i reversed); each
    arc after the first starts where the last one ended."""
    points = []
    for i in indices:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc if not points else arc[1:])
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    return points


def main(path):
    topo = json.load(open(path))
    arcs = decode_arcs(topo)
    out = sys.stdout
    out.write(
        "# Land outlines for the report's world map: Natural Earth 1:110m land\n"
        "# (version 4.1.0; public domain, naturalearthdata.com), read from\n"
        "# land-110m.json of the npm package world-atlas 2.0.2 (ISC licence,\n"
        "# Copyright 2013-2019 Michael Bostock) by src/report/build_land.py.\n"
        "# One ring per line: o (outer) or h (hole), then lon,lat pairs in degrees,\n"
        "# the ring closing on its first.\n"
    )
    for geometry in topo["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for k, indices in enumerate(polygon):
                points = ring(arcs, indices)
                if len(points) >= 3:
                    kind = "h" if k > 0 else "o"
                    out.write(kind + " " + " ".join(f"{x:.2f},{y:.2f}" for x, y in points) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
