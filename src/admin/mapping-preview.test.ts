import { describe, expect, it } from 'vitest';
import { changeMapping, type Mapping, mappingOf, previewMapping, settingsOfMapping } from './mapping-preview.js';

const mapping: Mapping = mappingOf({
  mappers: ['staff', 'students'],
  templates: ['Staff', 'Student'],
  default_template: 'Basic',
});

describe('previewMapping', () => {
  it('names the first matching row and its template, for new and existing mailboxes', () => {
    const preview = previewMapping(['students', 'staff'], mapping, 'mailcow_template');
    expect(preview.value).toBe('students');
    expect(preview.matchedRow).toBe(1);
    expect(preview.create).toEqual({ template: 'Student', why: 'mapped', mapper: 'students' });
    expect(preview.update).toEqual(preview.create);
    expect(preview.why.at(-1)).toBe('Row 2 ("students") matches: template "Student", for new and existing mailboxes.');
  });

  it('falls back to the default only for a new mailbox', () => {
    const preview = previewMapping(' guests ', mapping, 'mailcow_template');
    expect(preview.value).toBe('guests');
    expect(preview.create).toEqual({ template: 'Basic', why: 'default' });
    expect(preview.update).toEqual({ template: undefined, why: 'no_mapping' });
    expect(preview.why[0]).toContain('mailcow_template = "guests"');
  });

  it('says so when the user has no value and there is no default', () => {
    const preview = previewMapping(undefined, { ...mapping, defaultTemplate: '' }, 'role');
    expect(preview.create.why).toBe('no_mapping');
    expect(preview.why).toEqual([
      'The user has no role value, so no row can match.',
      'No row matches and there is no default template: no mailbox is created; an existing mailbox keeps its template.',
    ]);
  });
});

describe('changeMapping', () => {
  it('adds, moves, removes rows and sets the default, keeping mailcow’s index-aligned arrays', () => {
    let next = changeMapping(mapping, { op: 'add', value: ' alumni ', template: 'Basic' });
    next = changeMapping(next, { op: 'move', index: 2, to: 0 });
    next = changeMapping(next, { op: 'remove', index: 1 });
    next = changeMapping(next, { op: 'default', template: '' });
    expect(settingsOfMapping(next)).toEqual({
      mappers: ['alumni', 'students'],
      templates: ['Basic', 'Student'],
      default_template: '',
    });
  });

  it('refuses a value that is already mapped, an empty one, and impossible moves', () => {
    expect(() => changeMapping(mapping, { op: 'add', value: 'staff', template: 'Basic' })).toThrow(/already mapped/);
    expect(() => changeMapping(mapping, { op: 'add', value: '  ', template: 'Basic' })).toThrow(/must not be empty/);
    expect(() => changeMapping(mapping, { op: 'move', index: 0, to: 2 })).toThrow(/cannot move/);
    expect(() => changeMapping(mapping, { op: 'remove', index: 5 })).toThrow(/no such mapping row/);
  });
});
