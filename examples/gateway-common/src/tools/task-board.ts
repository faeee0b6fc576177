import { randomUUID } from 'node:crypto';
import { ToolInputError } from './sandbox.js';

/** A task on the orchestrator's board. */
export interface Task {
  task_id: string;
  title: string;
  description?: string;
  priority: 'low' | 'normal' | 'high';
  status: 'open' | 'assigned' | 'cancelled';
  assignee?: string;
  created_at: string;
  cancel_reason?: string;
}

/** The agents the orchestrator can hand work to (the demo clients that act as agents). */
export const AGENTS = [
  { agent_id: 'reviewer-agent', role: 'code_reviewer', status: 'idle' },
  { agent_id: 'auditor-agent', role: 'security_auditor', status: 'idle' },
  { agent_id: 'orchestrator-agent', role: 'orchestrator', status: 'busy' },
] as const;

/**
 * The `orchestrator` role's tools over an in-memory task board of this process (at most `maxTasks`
 * tasks; the oldest are forgotten first). An example of tools with no side-effect budget except
 * `invoke_agent`, which the contract limits per session.
 */
export function createTaskBoard(maxTasks = 10_000) {
  const tasks = new Map<string, Task>();
  const find = (id: string): Task => {
    const task = tasks.get(id);
    if (!task) throw new ToolInputError(`no such task: ${id}`);
    return task;
  };
  const knownAgent = (id: string) => {
    if (!AGENTS.some((a) => a.agent_id === id)) throw new ToolInputError(`no such agent: ${id}`);
  };
  const add = (task: Task): Task => {
    if (tasks.size >= maxTasks) tasks.delete(tasks.keys().next().value as string);
    tasks.set(task.task_id, task);
    return task;
  };
  return {
    create_task(input: {
      title: string;
      description?: string;
      priority?: Task['priority'];
      assignee?: string;
    }) {
      if (input.assignee) knownAgent(input.assignee);
      return add({
        task_id: randomUUID(),
        title: input.title,
        description: input.description,
        priority: input.priority ?? 'normal',
        status: input.assignee ? 'assigned' : 'open',
        assignee: input.assignee,
        created_at: new Date().toISOString(),
      });
    },
    assign_task(input: { task_id: string; agent_id: string }) {
      knownAgent(input.agent_id);
      const task = find(input.task_id);
      if (task.status === 'cancelled') throw new ToolInputError('the task is cancelled');
      return Object.assign(task, { status: 'assigned', assignee: input.agent_id });
    },
    get_task_status(input: { task_id: string }) {
      return find(input.task_id);
    },
    cancel_task(input: { task_id: string; reason?: string }) {
      return Object.assign(find(input.task_id), { status: 'cancelled', cancel_reason: input.reason });
    },
    list_agents(input: { role?: string; status?: string }) {
      return {
        agents: AGENTS.filter(
          (a) => (!input.role || a.role === input.role) && (!input.status || a.status === input.status),
        ),
      };
    },
    invoke_agent(input: { agent_id: string; task: string }) {
      knownAgent(input.agent_id);
      const task = this.create_task({
        title: input.task.slice(0, 200),
        description: input.task,
        assignee: input.agent_id,
      });
      return { handed_to: input.agent_id, task_id: task.task_id, status: task.status };
    },
  };
}
