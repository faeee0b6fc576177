# Tool access for AI agents, by role, from the role data document (data.amas.roles, see
# policies/roles.json and docs/role-data.md). A tool the role does not list is denied; a listed tool
# runs, or escalates to a human approval when its approval mode asks for one.
#
# The TypeScript twin of this policy (evaluateToolAccess in @amas/opa/testing) must give the same
# answers: both are held to policies/testdata/decision_table.json.
package amas.tool_access

default decision := {"allow": false, "escalate": false, "reasons": ["input_invalid"]}

decision := d if {
	valid_input
	d := role_decision
}

default tool_input := {}

tool_input := input.input

valid_input if {
	is_object(input)
	is_string(input.agent_role)
	is_string(input.tool_name)
	is_object(tool_input)
}

role := data.amas.roles[input.agent_role]

role_known if {
	is_object(role)
}

tool := role.tools[input.tool_name]

tool_allowed if {
	is_object(role.tools)
	is_object(tool)
}

role_decision := {"allow": false, "escalate": false, "reasons": ["role_unknown"]} if {
	not role_known
}

role_decision := {"allow": false, "escalate": false, "reasons": ["tool_not_allowed"]} if {
	role_known
	not tool_allowed
}

role_decision := {"allow": true, "escalate": false, "reasons": []} if {
	tool_allowed
	not needs_approval
}

role_decision := {"allow": false, "escalate": true, "reasons": ["approval_required"], "approval": approval} if {
	tool_allowed
	needs_approval
}

approval := {"approvers": approvers, "ttl_seconds": ttl_seconds}

# The approval mode defaults to "never"; an unknown mode asks for a human (fail closed).
default approval_mode := "never"

approval_mode := tool.approval.mode if {
	is_object(tool.approval)
}

# A present approval that is not an object (the string "always", null, a list) is malformed, not
# "never": like an unknown mode, it asks for a human (fail closed).
approval_mode := "malformed" if {
	value := tool.approval
	not is_object(value)
}

needs_approval if {
	approval_mode == "always"
}

needs_approval if {
	not approval_mode in {"never", "always", "when"}
}

needs_approval if {
	approval_mode == "when"
	not is_array(tool.approval.when)
}

needs_approval if {
	approval_mode == "when"
	is_array(tool.approval.when)
	some condition in tool.approval.when
	condition_matches(condition)
}

default approvers := []

approvers := tool.approval.approvers if {
	is_array(tool.approval.approvers)
}

default ttl_seconds := 900

ttl_seconds := tool.approval.ttl_seconds if {
	is_number(tool.approval.ttl_seconds)
	tool.approval.ttl_seconds > 0
}

# A malformed condition (unknown op, value of the wrong type) asks for a human (fail closed).
condition_matches(condition) if {
	not valid_condition(condition)
}

condition_matches(condition) if {
	valid_condition(condition)
	op_matches(condition)
}

valid_condition(condition) if {
	is_object(condition)
	is_string(condition.field)
	valid_value(condition.op, condition.value)
}

valid_value(op, _) if {
	op in {"equals", "not_equals", "contains"}
}

valid_value(op, value) if {
	op in {"in", "not_in"}
	is_array(value)
}

valid_value("prefix", value) if {
	is_string(value)
}

valid_value(op, value) if {
	op in {"gt", "gte", "lt", "lte"}
	is_number(value)
}

valid_value("exists", value) if {
	is_boolean(value)
}

# The value at a dot path into the tool input; undefined when a step is missing.
# Only objects are walked: "items.0" never indexes an array.
field_value(field) := value if {
	path := split(field, ".")
	walk(tool_input, [path, value])
}

field_exists(field) if {
	path := split(field, ".")
	walk(tool_input, [path, _])
}

op_matches(condition) if {
	condition.op == "equals"
	field_value(condition.field) == condition.value
}

op_matches(condition) if {
	condition.op == "not_equals"
	field_value(condition.field) != condition.value
}

op_matches(condition) if {
	condition.op == "in"
	field_value(condition.field) in condition.value
}

op_matches(condition) if {
	condition.op == "not_in"
	value := field_value(condition.field)
	not value in condition.value
}

op_matches(condition) if {
	condition.op == "prefix"
	value := field_value(condition.field)
	is_string(value)
	startswith(value, condition.value)
}

op_matches(condition) if {
	condition.op == "contains"
	value := field_value(condition.field)
	is_string(value)
	is_string(condition.value)
	contains(value, condition.value)
}

op_matches(condition) if {
	condition.op == "contains"
	value := field_value(condition.field)
	is_array(value)
	condition.value in value
}

op_matches(condition) if {
	condition.op == "gt"
	value := field_value(condition.field)
	is_number(value)
	value > condition.value
}

op_matches(condition) if {
	condition.op == "gte"
	value := field_value(condition.field)
	is_number(value)
	value >= condition.value
}

op_matches(condition) if {
	condition.op == "lt"
	value := field_value(condition.field)
	is_number(value)
	value < condition.value
}

op_matches(condition) if {
	condition.op == "lte"
	value := field_value(condition.field)
	is_number(value)
	value <= condition.value
}

op_matches(condition) if {
	condition.op == "exists"
	condition.value == true
	field_exists(condition.field)
}

op_matches(condition) if {
	condition.op == "exists"
	condition.value == false
	not field_exists(condition.field)
}
