import { describe, expect, it } from 'vitest';
import { pickTemplate, type TemplateMappings } from './pick-template.js';

const mappings: TemplateMappings = {
  mappers: ['staff', 'student', 'premium'],
  templates: ['Staff', 'Students', 'Premium'],
  defaultTemplate: 'Default',
};

describe('pickTemplate', () => {
  it.each([
    {
      name: 'a mapped value',
      value: 'student',
      purpose: 'create',
      expected: { template: 'Students', why: 'mapped', mapper: 'student' },
    },
    {
      name: 'the first element of a Keycloak attribute array',
      value: ['premium', 'staff'],
      purpose: 'update',
      expected: { template: 'Premium', why: 'mapped', mapper: 'premium' },
    },
    {
      name: 'a value with surrounding spaces',
      value: ' staff ',
      purpose: 'update',
      expected: { template: 'Staff', why: 'mapped', mapper: 'staff' },
    },
    {
      name: 'an unmapped value when creating',
      value: 'alumni',
      purpose: 'create',
      expected: { template: 'Default', why: 'default' },
    },
    {
      name: 'an absent attribute when creating',
      value: undefined,
      purpose: 'create',
      expected: { template: 'Default', why: 'default' },
    },
    {
      name: 'an empty array when creating',
      value: [],
      purpose: 'create',
      expected: { template: 'Default', why: 'default' },
    },
    {
      name: 'an unmapped value when updating',
      value: 'alumni',
      purpose: 'update',
      expected: { template: undefined, why: 'no_mapping' },
    },
    {
      name: 'an absent attribute when updating',
      value: undefined,
      purpose: 'update',
      expected: { template: undefined, why: 'no_mapping' },
    },
  ] as const)('picks for $name', ({ value, purpose, expected }) => {
    expect(pickTemplate(value, mappings, purpose)).toEqual(expected);
  });

  it('matches case-sensitively, as mailcow does', () => {
    expect(pickTemplate('Staff', mappings, 'update')).toEqual({ template: undefined, why: 'no_mapping' });
  });

  it('takes the first of duplicate mappers', () => {
    const duplicated = { mappers: ['x', 'x'], templates: ['First', 'Second'] };
    expect(pickTemplate('x', duplicated, 'update')).toMatchObject({ template: 'First' });
  });

  it('gives no template when creating without a default', () => {
    expect(pickTemplate('alumni', { mappers: [], templates: [] }, 'create')).toEqual({
      template: undefined,
      why: 'no_mapping',
    });
  });
});
