/**
 * The refcount models (SPEC §3) by the id that the info block (region) and
 * the side table's header (page) record: the one list both layers read. An
 * id is never reused; a new model takes the next one. The models' rules live
 * in src/page/models.ts.
 */
export const MODEL_BY_ID = ['legacy', 'dax-gup', 'upstream', 'dax-gup-v1'] as const
export type ModelName = (typeof MODEL_BY_ID)[number]
