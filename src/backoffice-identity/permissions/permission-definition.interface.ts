/** A permission a group can hold: a dotted key such as `reports.export` and what it allows. */
export interface BackOfficePermissionDefinition {
  key: string;
  description: string;
}
