/*
 * pgtandem's capture trigger in C, for sources where the DBA may load a
 * module into PostgreSQL (self-hosted, not Heroku, RDS or Cloud SQL).
 *
 * It writes exactly the deltas of the PL/pgSQL trigger that
 * pgtandem.capture_table() generates: the row's key, the writing transaction,
 * the sequence number, the statement's start and the "inserted" flag, and it
 * wakes a listening daemon once per transaction. It only costs less: a PL/pgSQL
 * trigger runs its INSERT through the executor, whose set-up per row costs
 * more than the row itself; this one writes the heap tuple and its index
 * entries directly.
 *
 * Usage (pgtandem install does it when the source node says "capture": "c"):
 *   CREATE TRIGGER pgtandem_capture AFTER INSERT OR UPDATE OR DELETE ON t
 *     FOR EACH ROW EXECUTE FUNCTION pgtandem.capture_row('d_1');
 * where pgtandem.d_1 is the table's delta table.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/xid8.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(capture_row);

void _PG_init(void);

/* Where one trigger writes: resolved from the catalogs once per trigger. */
typedef struct CaptureTarget
{
	Oid			trigger;		/* hash key: the trigger's OID (each partition's clone has its own) */
	Oid			delta;			/* pgtandem.d_N */
	Oid			sequence;		/* pgtandem.delta_seq */
	int			delta_natts;
	AttrNumber	txid_att;		/* attribute numbers in the delta table */
	AttrNumber	seq_att;
	AttrNumber	captured_att;
	AttrNumber	inserted_att;
	int			nkeys;
	AttrNumber	key_source[INDEX_MAX_KEYS]; /* in the triggering relation */
	AttrNumber	key_delta[INDEX_MAX_KEYS];
	bool		key_varlena[INDEX_MAX_KEYS];
	/* A key column whose type changed since install goes through text, as an
	 * INSERT of the PL/pgSQL trigger would cast it; an error if it does not fit. */
	bool		key_convert[INDEX_MAX_KEYS];
	FmgrInfo	key_output[INDEX_MAX_KEYS];
	FmgrInfo	key_input[INDEX_MAX_KEYS];
	Oid			key_ioparam[INDEX_MAX_KEYS];
	int32		key_typmod[INDEX_MAX_KEYS];
	Oid			key_collation[INDEX_MAX_KEYS];
	FmgrInfo	key_equal[INDEX_MAX_KEYS];	/* the type's "=": a key change is judged as IS DISTINCT FROM does */
} CaptureTarget;

static MemoryContext targets_context = NULL;
static HTAB *targets = NULL;
/* Set by any relcache invalidation: columns, indexes or triggers may have changed. */
static bool targets_stale = false;

/* The daemon is woken once per transaction, like the PL/pgSQL trigger's
 * pgtandem.notified setting: woken_level is the subtransaction that queued
 * the notification, which its abort discards. */
static bool woken = false;
static int	woken_level = 0;

static void
forget_targets(Datum arg, Oid relid)
{
	targets_stale = true;
}

static void
end_of_transaction(XactEvent event, void *arg)
{
	woken = false;
}

static void
end_of_subtransaction(SubXactEvent event, SubTransactionId mine, SubTransactionId parent, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	if (!woken || woken_level < level)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		woken = false;
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		woken_level = level - 1;
}

void
_PG_init(void)
{
	CacheRegisterRelcacheCallback(forget_targets, (Datum) 0);
	RegisterXactCallback(end_of_transaction, NULL);
	RegisterSubXactCallback(end_of_subtransaction, NULL);
}

static Oid
pgtandem_relation(Oid schema, const char *name, Relation source)
{
	Oid			relid = get_relname_relid(name, schema);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("pgtandem capture on table \"%s\": relation pgtandem.%s does not exist",
						RelationGetRelationName(source), name),
				 errhint("Run \"pgtandem install\" again, or \"pgtandem uninstall\" to remove capture.")));
	return relid;
}

/* Reads the catalogs for one trigger; errors leave the cache untouched. */
static void
resolve_target(TriggerData *trigdata, CaptureTarget *target)
{
	Relation	source = trigdata->tg_relation;
	TupleDesc	source_desc = RelationGetDescr(source);
	Oid			schema = get_namespace_oid("pgtandem", false);
	Relation	delta;
	TupleDesc	delta_desc;
	int			i;

	memset(target, 0, sizeof(*target));
	target->trigger = trigdata->tg_trigger->tgoid;
	target->delta = pgtandem_relation(schema, trigdata->tg_trigger->tgargs[0], source);
	target->sequence = pgtandem_relation(schema, "delta_seq", source);

	delta = table_open(target->delta, AccessShareLock);
	delta_desc = RelationGetDescr(delta);
	target->delta_natts = delta_desc->natts;
	for (i = 0; i < delta_desc->natts; i++)
	{
		Form_pg_attribute column = TupleDescAttr(delta_desc, i);
		const char *name = NameStr(column->attname);
		AttrNumber	source_att;
		Form_pg_attribute source_column;
		TypeCacheEntry *type;
		int			k;

		if (column->attisdropped)
			continue;
		if (strcmp(name, "txid") == 0)
			target->txid_att = column->attnum;
		else if (strcmp(name, "seq") == 0)
			target->seq_att = column->attnum;
		else if (strcmp(name, "captured_at") == 0)
			target->captured_att = column->attnum;
		else if (strcmp(name, "inserted") == 0)
			target->inserted_att = column->attnum;
		else
		{
			source_att = get_attnum(RelationGetRelid(source), name);
			if (source_att <= 0 || target->nkeys >= INDEX_MAX_KEYS)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("pgtandem capture on table \"%s\": key column \"%s\" of its delta table %s is not a column of the table",
								RelationGetRelationName(source), name, RelationGetRelationName(delta)),
						 errhint("Run \"pgtandem uninstall\", then \"pgtandem install\", and bootstrap the targets.")));
			source_column = TupleDescAttr(source_desc, source_att - 1);
			type = lookup_type_cache(source_column->atttypid, TYPECACHE_EQ_OPR);
			if (!OidIsValid(type->eq_opr))
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_FUNCTION),
						 errmsg("pgtandem capture on table \"%s\": type %s of key column \"%s\" has no equality operator",
								RelationGetRelationName(source), format_type_be(source_column->atttypid), name)));
			k = target->nkeys++;
			if (source_column->atttypid != column->atttypid)
			{
				Oid			output;
				Oid			input;
				bool		varlena;

				getTypeOutputInfo(source_column->atttypid, &output, &varlena);
				getTypeInputInfo(column->atttypid, &input, &target->key_ioparam[k]);
				fmgr_info_cxt(output, &target->key_output[k], targets_context);
				fmgr_info_cxt(input, &target->key_input[k], targets_context);
				target->key_typmod[k] = column->atttypmod;
				target->key_convert[k] = true;
			}
			target->key_source[k] = source_att;
			target->key_delta[k] = column->attnum;
			target->key_varlena[k] = source_column->attlen == -1;
			target->key_collation[k] = source_column->attcollation;
			fmgr_info_cxt(get_opcode(type->eq_opr), &target->key_equal[k], targets_context);
		}
	}
	table_close(delta, AccessShareLock);
	if (target->txid_att == 0 || target->seq_att == 0 || target->captured_att == 0 ||
		target->inserted_att == 0 || target->nkeys == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("pgtandem capture on table \"%s\": delta table pgtandem.%s lacks txid, seq, captured_at, inserted or key columns",
						RelationGetRelationName(source), trigdata->tg_trigger->tgargs[0]),
				 errhint("Run \"pgtandem install\" again.")));
}

static CaptureTarget *
lookup_target(TriggerData *trigdata)
{
	Oid			trigger = trigdata->tg_trigger->tgoid;
	CaptureTarget resolved;
	CaptureTarget *entry;
	bool		found;

	if (targets_context == NULL)
		targets_context = AllocSetContextCreate(CacheMemoryContext, "pgtandem capture targets",
												ALLOCSET_SMALL_SIZES);
	if (targets_stale && targets != NULL)
	{
		hash_destroy(targets);
		targets = NULL;
		MemoryContextReset(targets_context);
	}
	targets_stale = false;
	if (targets == NULL)
	{
		HASHCTL		control;

		control.keysize = sizeof(Oid);
		control.entrysize = sizeof(CaptureTarget);
		control.hcxt = targets_context;
		targets = hash_create("pgtandem capture targets", 16, &control,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	entry = hash_search(targets, &trigger, HASH_FIND, NULL);
	if (entry != NULL)
		return entry;
	resolve_target(trigdata, &resolved);
	entry = hash_search(targets, &trigger, HASH_ENTER, &found);
	*entry = resolved;
	return entry;
}

/* Index entries for a tuple written directly: the delta tables' indexes are
 * on plain columns, so their values are taken from the tuple's own. */
static void
insert_index_entries(Relation delta, HeapTuple tuple, Datum *values, bool *nulls)
{
	List	   *indexes = RelationGetIndexList(delta);
	ListCell   *cell;

	foreach(cell, indexes)
	{
		Relation	index = index_open(lfirst_oid(cell), RowExclusiveLock);
		IndexInfo  *info = BuildIndexInfo(index);
		Datum		index_values[INDEX_MAX_KEYS];
		bool		index_nulls[INDEX_MAX_KEYS];
		int			i;

		if (info->ii_Expressions != NIL || info->ii_Predicate != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("pgtandem capture: index \"%s\" on delta table \"%s\" has expressions or a predicate",
							RelationGetRelationName(index), RelationGetRelationName(delta)),
					 errhint("Drop that index; pgtandem's C capture maintains plain column indexes only.")));
		if (info->ii_ReadyForInserts)
		{
			for (i = 0; i < info->ii_NumIndexAttrs; i++)
			{
				AttrNumber	column = info->ii_IndexAttrNumbers[i];

				index_values[i] = values[column - 1];
				index_nulls[i] = nulls[column - 1];
			}
			index_insert(index, index_values, index_nulls, &tuple->t_self, delta,
						 info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, false, info);
		}
		index_close(index, NoLock);
	}
	list_free(indexes);
}

/* Writes one delta: the key of `row` (a tuple of the triggering relation). */
static void
record_delta(const CaptureTarget *target, Relation source, HeapTuple row, bool inserted)
{
	Relation	delta = table_open(target->delta, RowExclusiveLock);
	TupleDesc	delta_desc = RelationGetDescr(delta);
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tuple;
	int			k;

	/* The columns were resolved against this descriptor; a change since sent an invalidation. */
	if (delta_desc->natts != target->delta_natts)
		elog(ERROR, "pgtandem capture: delta table \"%s\" changed while in use", RelationGetRelationName(delta));
	values = palloc0(sizeof(Datum) * delta_desc->natts);
	nulls = palloc(sizeof(bool) * delta_desc->natts);
	memset(nulls, true, sizeof(bool) * delta_desc->natts);

	values[target->txid_att - 1] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	nulls[target->txid_att - 1] = false;
	values[target->seq_att - 1] = Int64GetDatum(nextval_internal(target->sequence, true));
	nulls[target->seq_att - 1] = false;
	values[target->captured_att - 1] = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	nulls[target->captured_att - 1] = false;
	values[target->inserted_att - 1] = BoolGetDatum(inserted);
	nulls[target->inserted_att - 1] = false;
	for (k = 0; k < target->nkeys; k++)
	{
		bool		isnull;
		Datum		value = heap_getattr(row, target->key_source[k], RelationGetDescr(source), &isnull);

		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("pgtandem capture on table \"%s\": key column %d is null",
							RelationGetRelationName(source), target->key_source[k])));
		if (target->key_convert[k])
			value = InputFunctionCall((FmgrInfo *) &target->key_input[k],
									  OutputFunctionCall((FmgrInfo *) &target->key_output[k], value),
									  target->key_ioparam[k], target->key_typmod[k]);
		/* A toasted key would point into the source table's TOAST relation. */
		else if (target->key_varlena[k])
			value = PointerGetDatum(pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value)));
		values[target->key_delta[k] - 1] = value;
		nulls[target->key_delta[k] - 1] = false;
	}

	tuple = heap_form_tuple(delta_desc, values, nulls);
	simple_heap_insert(delta, tuple);
	insert_index_entries(delta, tuple, values, nulls);
	table_close(delta, NoLock);
}

static bool
keys_differ(const CaptureTarget *target, Relation source, HeapTuple before, HeapTuple after)
{
	TupleDesc	desc = RelationGetDescr(source);
	int			k;

	for (k = 0; k < target->nkeys; k++)
	{
		bool		before_null;
		bool		after_null;
		Datum		a = heap_getattr(before, target->key_source[k], desc, &before_null);
		Datum		b = heap_getattr(after, target->key_source[k], desc, &after_null);

		if (before_null || after_null)
		{
			if (before_null != after_null)
				return true;
			continue;
		}
		if (!DatumGetBool(FunctionCall2Coll((FmgrInfo *) &target->key_equal[k], target->key_collation[k], a, b)))
			return true;
	}
	return false;
}

/*
 * A daemon's listening session holds this advisory lock shared,
 * pg_advisory_lock_shared(1885828196, 2), as the PL/pgSQL trigger knows too.
 * When nobody holds it, no daemon would hear a NOTIFY, which would still cost
 * the commit the notification queue's cluster-wide lock: so none is sent.
 */
#define LISTENER_LOCK_CLASS 1885828196
#define LISTENER_LOCK_OBJECT 2

static bool
daemon_listening(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, LISTENER_LOCK_CLASS, LISTENER_LOCK_OBJECT, 2);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ExclusiveLock, false);
	return false;
}

static void
wake_daemon(void)
{
	const char *setting;

	if (woken)
		return;
	woken = true;
	woken_level = GetCurrentTransactionNestLevel();
	setting = GetConfigOption("pgtandem.notify", true, false);
	if ((setting == NULL || strcmp(setting, "off") != 0) && daemon_listening())
		Async_Notify("pgtandem", "");
}

Datum
capture_row(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const CaptureTarget *target;
	Relation	source;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgtandem.capture_row() must be fired AFTER INSERT, UPDATE or DELETE, FOR EACH ROW")));
	if (trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgtandem.capture_row() takes one argument, the name of the delta table")));

	source = trigdata->tg_relation;
	target = lookup_target(trigdata);
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		record_delta(target, source, trigdata->tg_trigtuple, true);
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		record_delta(target, source, trigdata->tg_trigtuple, false);
	else if (keys_differ(target, source, trigdata->tg_trigtuple, trigdata->tg_newtuple))
	{
		record_delta(target, source, trigdata->tg_newtuple, true);
		record_delta(target, source, trigdata->tg_trigtuple, false);
	}
	else
		record_delta(target, source, trigdata->tg_newtuple, false);
	wake_daemon();
	return PointerGetDatum(NULL);
}
