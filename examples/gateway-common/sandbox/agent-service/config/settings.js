// Settings of the agent service. This file is sample data for the example gateway's scanner:
// the value below is deliberately fake and is what `run_scan` in active mode reports.
export const settings = {
  region: 'eu-west-1',
  api_key: 'demo-not-a-real-key-0000',
};
