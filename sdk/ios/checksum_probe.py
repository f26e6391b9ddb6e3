#!/usr/bin/env python3
"""Writes a C program that checks what the generated Swift bindings expect of the library.

The Swift file refuses to run when a checksum function of the library returns another value than
the one it was generated with, or when the contract versions differ. No Swift compiler runs here,
so this reads those expectations out of the Swift source and calls the same C symbols through the
generated header: the probe fails exactly when the Swift module would fail to initialise.

usage: checksum_probe.py BINDINGS.swift HEADER.h > probe.c
"""
import re
import sys

swift_path, header = sys.argv[1], sys.argv[2]
swift = open(swift_path, encoding="utf-8").read()

checks = re.findall(r"if \((uniffi_\w+_checksum_\w+)\(\) != (\d+)\)", swift)
if not checks:
    sys.exit(f"no checksum checks found in {swift_path}: has the generator's output changed?")
contract = re.search(r"let bindings_contract_version = (\d+)", swift)
scaffolding = re.search(r"let scaffolding_contract_version = (ffi_\w+_uniffi_contract_version)\(\)", swift)
if not contract or not scaffolding:
    sys.exit(f"no contract version check found in {swift_path}")

print(f'#include <stdio.h>\n#include "{header}"\n')
print("static int failed = 0;")
print("static void check(const char *name, unsigned long long got, unsigned long long want) {")
print('    if (got != want) { printf("MISMATCH %s: library %llu, Swift expects %llu\\n", name, got, want); failed++; }')
print("}\n")
print("int main(void) {")
print(f'    check("{scaffolding.group(1)}", {scaffolding.group(1)}(), {contract.group(1)});')
for fn, want in checks:
    print(f'    check("{fn}", {fn}(), {want}ULL);')
print(f'    if (failed) {{ printf("%d of {len(checks) + 1} checks failed\\n", failed); return 1; }}')
print(f'    printf("contract version and {len(checks)} API checksums match the Swift bindings\\n");')
print("    return 0;")
print("}")
