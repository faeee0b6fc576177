package amas.tool_access_test

import data.amas.tool_access

# Every case of testdata/decision_table.json, which the TypeScript tests of @amas/opa also run
# against evaluateToolAccess, so the policy and its twin cannot drift apart.
test_decision_table if {
	count(data.testdata.cases) > 100
	count(failed_cases) == 0
}

failed_cases contains c.name if {
	some c in data.testdata.cases
	not case_passes(c)
}

case_passes(c) if {
	d := case_decision(c)
	outcome(d) == c.expected
	d.reasons == c.reasons
	approval_as_expected(c, d)
}

case_decision(c) := d if {
	not c.roles
	d := tool_access.decision with input as c.input
}

case_decision(c) := d if {
	c.roles == "fixture"
	d := tool_access.decision with input as c.input with data.amas.roles as data.testdata.fixture_roles
}

outcome(d) := "allow" if {
	d.allow == true
	d.escalate == false
}

outcome(d) := "escalate" if {
	d.allow == false
	d.escalate == true
}

outcome(d) := "deny" if {
	d.allow == false
	d.escalate == false
}

approval_as_expected(c, d) if {
	c.expected != "escalate"
	not d.approval
}

approval_as_expected(c, d) if {
	c.expected == "escalate"
	d.approval == c.approval
}

test_shipped_roles_are_loaded if {
	count(data.amas.roles) == 4
	data.amas.roles.security_auditor.tools.run_pentest.approval.mode == "always"
}

test_allow_shape if {
	d := tool_access.decision with input as {"agent_role": "code_reviewer", "tool_name": "read_file", "input": {"path": "README.md"}}
	d == {"allow": true, "escalate": false, "reasons": []}
}

test_escalation_shape if {
	d := tool_access.decision with input as {"agent_role": "security_auditor", "tool_name": "run_scan", "input": {"target": "10.0.0.5", "mode": "active"}}
	d == {"allow": false, "escalate": true, "reasons": ["approval_required"], "approval": {"approvers": ["approvals:security"], "ttl_seconds": 900}}
}

test_decision_is_defined_without_input if {
	tool_access.decision == {"allow": false, "escalate": false, "reasons": ["input_invalid"]}
}

test_decision_without_role_data_denies if {
	d := tool_access.decision with input as {"agent_role": "admin", "tool_name": "read_file"} with data.amas.roles as {}
	d == {"allow": false, "escalate": false, "reasons": ["role_unknown"]}
}

test_approval_that_is_not_an_object_asks_for_a_human if {
	d := tool_access.decision with input as {"agent_role": "r", "tool_name": "t"} with data.amas.roles as {"r": {"tools": {"t": {"approval": "always"}}}}
	d == {"allow": false, "escalate": true, "reasons": ["approval_required"], "approval": {"approvers": [], "ttl_seconds": 900}}
}
