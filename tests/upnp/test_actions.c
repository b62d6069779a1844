/* test_actions.c - invariants of the dispatch table, the state variable table and the
 * error table of upnp/ (the tables are the spec; this keeps them consistent). */
#include "content.h"
#include "../testutil.h"

#include <string.h>

static bool in_field_ok(enum upnp_field f)
{
	return f >= UPNP_F_REMOTE_HOST && f <= UPNP_F_FLAG;
}

static bool out_field_ok(enum upnp_field f)
{
	switch (f) {
	case UPNP_F_NONE: case UPNP_F_INDEX: case UPNP_F_START_PORT: case UPNP_F_END_PORT:
	case UPNP_F_MANAGE: case UPNP_F_NUMBER_OF_PORTS:
		return false;
	default:
		return true;
	}
}

static void check_args(const struct upnp_action_def *d, const struct upnp_arg_def *args,
		       bool in)
{
	for (int i = 0; i < UPNP_MAX_ARGS && args[i].name != NULL; i++) {
		CHECKF(strncmp(args[i].name, "New", 3) == 0, "%s %s", d->name, args[i].name);
		CHECKF(in ? in_field_ok(args[i].field) : out_field_ok(args[i].field), "%s %s",
		       d->name, args[i].name);
		for (int j = 0; j < i; j++)
			CHECKF(strcmp(args[i].name, args[j].name) != 0, "%s dup %s", d->name,
			       args[i].name);
		for (int fl = 0; fl < UPNP_FL__COUNT; fl++)
			if (d->flavours & UPNP_FLB(fl))
				CHECKF(upnp_var_find(args[i].var, (enum upnp_flavour)fl) != NULL,
				       "%s: %s relates to %s, missing in flavour %d", d->name,
				       args[i].name, args[i].var, fl);
	}
	/* the list is terminated within the array */
	CHECKF(args[UPNP_MAX_ARGS - 1].name == NULL, "%s: too many args", d->name);
}

int main(void)
{
	int seen[UPNP_ACT__COUNT] = { 0 };

	/* every enum value appears exactly once, in enum order */
	CHECK(upnp_n_actions == UPNP_ACT__COUNT);
	for (size_t i = 0; i < upnp_n_actions; i++) {
		const struct upnp_action_def *d = &upnp_actions[i];
		CHECKF((size_t)d->action == i, "row %zu is %s", i, d->name);
		if ((unsigned)d->action < UPNP_ACT__COUNT)
			seen[d->action]++;
		CHECK(d->name != NULL && d->name[0] != '\0');
		CHECKF(d->flavours != 0 && d->flavours < UPNP_FLB(UPNP_FL__COUNT), "%s", d->name);
		for (size_t j = 0; j < i; j++) /* SOAP names unique */
			CHECKF(strcmp(d->name, upnp_actions[j].name) != 0, "dup %s", d->name);
		check_args(d, d->in, true);
		check_args(d, d->out, false);
		CHECK(upnp_action_get(d->action) == d);
		CHECK(strcmp(upnp_action_name(d->action), d->name) == 0);
		for (int fl = 0; fl < UPNP_FL__COUNT; fl++) {
			const struct upnp_action_def *l = upnp_action_lookup(d->name, strlen(d->name),
									   (enum upnp_flavour)fl);
			CHECKF((d->flavours & UPNP_FLB(fl)) ? l == d : l == NULL, "%s fl %d",
			       d->name, fl);
		}
	}
	for (int a = 0; a < UPNP_ACT__COUNT; a++)
		CHECKF(seen[a] == 1, "action %d seen %d times", a, seen[a]);
	CHECK(upnp_action_get(UPNP_ACT__COUNT) == NULL);
	CHECK(strcmp(upnp_action_name(UPNP_ACT__COUNT), "?") == 0);
	CHECK(upnp_action_lookup("addportmapping", 14, UPNP_FL_IP1) == NULL); /* case matters */
	CHECK(upnp_action_lookup("AddPortMapping", 13, UPNP_FL_IP1) == NULL); /* prefix */

	/* compatibility requests: outside the enum and the SCPDs */
	const struct upnp_action_def *compat[] = { &upnp_compat_query_state_variable,
						   &upnp_compat_get_pm_number_of_entries };
	for (size_t i = 0; i < 2; i++) {
		CHECK(compat[i]->action == UPNP_ACT__COUNT);
		for (int fl = 0; fl < UPNP_FL__COUNT; fl++)
			CHECK(upnp_action_lookup(compat[i]->name, strlen(compat[i]->name),
						 (enum upnp_flavour)fl) == NULL);
	}
	CHECK(upnp_action_n_in(&upnp_compat_query_state_variable) == 1);
	CHECK(upnp_compat_get_pm_number_of_entries.flavours ==
	      (UPNP_FLB(UPNP_FL_IP1) | UPNP_FLB(UPNP_FL_IP2) | UPNP_FLB(UPNP_FL_PPP1)));

	/* which services define what (issue 4 item 5) */
	struct { const char *name; unsigned fl; } expect[] = {
		{ "AddPortMapping", UPNP_FLB(UPNP_FL_IP1) | UPNP_FLB(UPNP_FL_IP2) | UPNP_FLB(UPNP_FL_PPP1) },
		{ "AddAnyPortMapping", UPNP_FLB(UPNP_FL_IP2) },
		{ "GetListOfPortMappings", UPNP_FLB(UPNP_FL_IP2) },
		{ "DeletePortMappingRange", UPNP_FLB(UPNP_FL_IP2) },
		{ "GetUserName", UPNP_FLB(UPNP_FL_PPP1) },
		{ "GetCommonLinkProperties", UPNP_FLB(UPNP_FL_CIC1) },
		{ "GetDefaultConnectionService", UPNP_FLB(UPNP_FL_L3F1) },
	};
	for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
		size_t n = strlen(expect[i].name);
		for (int fl = 0; fl < UPNP_FL__COUNT; fl++)
			CHECKF((upnp_action_lookup(expect[i].name, n, (enum upnp_flavour)fl) != NULL) ==
			       ((expect[i].fl & UPNP_FLB(fl)) != 0), "%s fl %d", expect[i].name, fl);
	}
	/* AddPortMapping: the 8 in args of seed 000 table 23, in order */
	const struct upnp_action_def *apm = upnp_action_get(UPNP_ACT_ADD_PORT_MAPPING);
	const char *apm_args[] = { "NewRemoteHost", "NewExternalPort", "NewProtocol",
		"NewInternalPort", "NewInternalClient", "NewEnabled", "NewPortMappingDescription",
		"NewLeaseDuration" };
	CHECK(upnp_action_n_in(apm) == 8 && upnp_action_n_out(apm) == 0);
	for (size_t i = 0; i < 8; i++)
		CHECK(strcmp(apm->in[i].name, apm_args[i]) == 0);

	/* state variables: one row per (name, flavour), each flavour has the evented ones */
	for (size_t i = 0; i < upnp_n_vars; i++) {
		for (size_t j = 0; j < i; j++)
			CHECKF(strcmp(upnp_vars[i].name, upnp_vars[j].name) != 0 ||
			       (upnp_vars[i].flavours & upnp_vars[j].flavours) == 0, "dup var %s",
			       upnp_vars[i].name);
		CHECK(!upnp_vars[i].has_range || upnp_vars[i].min <= upnp_vars[i].max);
	}
	const char *conn_evented[] = { "PossibleConnectionTypes", "ConnectionStatus",
		"ExternalIPAddress", "PortMappingNumberOfEntries" };
	for (int fl = UPNP_FL_IP1; fl <= UPNP_FL_PPP1; fl++)
		for (size_t i = 0; i < 4; i++) {
			const struct upnp_var_def *v = upnp_var_find(conn_evented[i], (enum upnp_flavour)fl);
			CHECK(v != NULL && v->evented);
		}
	CHECK(upnp_var_find("SystemUpdateID", UPNP_FL_IP2) != NULL);
	CHECK(upnp_var_find("SystemUpdateID", UPNP_FL_IP1) == NULL);
	CHECK(upnp_var_find("PortMappingLeaseDuration", UPNP_FL_IP2)->max == 604800);
	for (int fl = 0; fl < UPNP_FL__COUNT; fl++) {
		const struct upnp_flavour_def *f = upnp_flavour_get((enum upnp_flavour)fl);
		CHECK(f != NULL && f->flavour == (enum upnp_flavour)fl);
	}
	CHECK(upnp_flavour_get(UPNP_FL__COUNT) == NULL);

	/* error table: the codes of issue 4 / UDA with their standard names */
	struct { int code; const char *d; } errs[] = {
		{ 401, "Invalid Action" }, { 402, "Invalid Args" }, { 501, "Action Failed" },
		{ 606, "Action not authorized" }, { 713, "SpecifiedArrayIndexInvalid" },
		{ 714, "NoSuchEntryInArray" }, { 715, "WildCardNotPermittedInSrcIP" },
		{ 716, "WildCardNotPermittedInExtPort" }, { 718, "ConflictInMappingEntry" },
		{ 724, "SamePortValuesRequired" }, { 725, "OnlyPermanentLeasesSupported" },
		{ 726, "RemoteHostOnlySupportsWildcard" }, { 727, "ExternalPortOnlySupportsWildcard" },
		{ 728, "NoPortMapsAvailable" }, { 729, "ConflictWithOtherMechanisms" },
		{ 730, "PortMappingNotFound" }, { 731, "ReadOnly" },
		{ 732, "WildCardNotPermittedInIntPort" }, { 733, "InconsistentParameters" },
	};
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		const char *d = upnp_error_description(errs[i].code);
		CHECKF(d != NULL && strcmp(d, errs[i].d) == 0, "%d", errs[i].code);
	}
	int prev = 0;
	for (int c = 0; c < 1000; c++) /* sorted table: every code found by binary search */
		if (upnp_error_description(c) != NULL) {
			CHECK(c > prev);
			prev = c;
		}
	CHECK(upnp_error_description(717) == NULL);
	CHECK(strcmp(upnp_error_description_or(717), "Action Failed") == 0);
	CHECK(strcmp(upnp_error_description_or(899), "Vendor Error") == 0);
	CHECK(strcmp(upnp_err_name(UPNP_OK), "ok") == 0);
	CHECK(strcmp(upnp_err_name((enum upnp_err)99), "unknown error") == 0);
	return tu_finish("test_actions");
}
