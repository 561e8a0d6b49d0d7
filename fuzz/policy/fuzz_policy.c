/*
 * fuzz/policy/fuzz_policy.c — libFuzzer target for the policy reader, compiler and audit.
 * Any input must give a clear diagnostic or a table that every consumer can walk: decisions
 * over every workspace/class/tool, check, the compiled table, explain, diff against itself.
 */
#include <stdint.h>
#include <stdio.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pol_diags d;
    pol_compiled *p = NULL;
    pol_diags_init(&d);
    pl_rc rc = pol_load_buffer("fuzz", (const char *)data, size, POL_LOAD_KEEP_ERRORS, &d, &p);
    if (rc == PL_OK) {
        FILE *sink = fopen("/dev/null", "w");
        pol_check(p, NULL, &d);
        if (sink) {
            size_t changed;
            pol_compiled_write(p, sink);
            pol_summary_write(p, "fuzz", sink);
            pol_diff_write(p, p, sink, &changed);
            pol_diags_print(&d, sink);
        }
        for (uint32_t t = 0; t < pol_tool_count(p) && t < 64; t++) {
            for (uint32_t w = 0; w < pol_workspace_count(p) && w < 8; w++) {
                for (uint32_t c = 0; c < POL_CLASS_COUNT; c++) {
                    pol_decision dec;
                    pol_grant g;
                    pol_decide(p, POL_MASK_ALL, w, c, t, &dec);
                    pol_decide(p, 0, w, c, t, &dec);
                    pol_grantable(p, (pol_role)(c % POL_ROLE_COUNT), w, c, POL_MASK_ALL, &g);
                    if (sink && t == 0)
                        pol_explain_write(p, POL_MASK_ALL, w, c, t, (int)(w & 1), sink);
                }
            }
        }
        if (sink) {
            for (unsigned b = 0; b < POL_SCOPE_COUNT; b += 7)
                pol_whocan_write(p, b, (int)(b & 1), sink);
            fclose(sink);
        }
    } else if (d.count[POL_SEV_FATAL] == 0 && rc != PL_ERR_NOMEM) {
        __builtin_trap(); /* every refusal must come with a fatal diagnostic */
    }
    pol_compiled_free(p);
    pol_diags_free(&d);
    return 0;
}
